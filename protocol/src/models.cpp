#include "troupe/protocol/models.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <string_view>
#include <utility>

namespace troupe {

namespace {

struct builtin_price {
  std::string_view family;
  model_price price;
};

// Anthropic's list prices, in US dollars per million tokens: input, output,
// cache reads, cache writes (five-minute).
constexpr std::array<builtin_price, 9> builtin_prices{{
  {"claude-opus-4-5", {5, 25, 0.5, 6.25}},
  {"claude-opus-4-1", {15, 75, 1.5, 18.75}},
  {"claude-opus-4", {15, 75, 1.5, 18.75}},
  {"claude-sonnet-4-5", {3, 15, 0.3, 3.75}},
  {"claude-sonnet-4", {3, 15, 0.3, 3.75}},
  {"claude-3-7-sonnet", {3, 15, 0.3, 3.75}},
  {"claude-haiku-4-5", {1, 5, 0.1, 1.25}},
  {"claude-3-5-haiku", {0.8, 4, 0.08, 1}},
  {"claude-3-haiku", {0.25, 1.25, 0.03, 0.3}},
}};

// Default models by tier for the executors that have them.
std::string default_model(const std::string& kind, model_tier tier) {
  if (kind == "anthropic") {
    switch (tier) {
      case model_tier::fast:
        return "claude-haiku-4-5";
      case model_tier::balanced:
        return "claude-sonnet-4-5";
      default:
        return "claude-opus-4-5";
    }
  }
  if (kind == "claude-code") {
    // The CLI's own aliases: it picks the current model of each family.
    switch (tier) {
      case model_tier::fast:
        return "haiku";
      case model_tier::balanced:
        return "sonnet";
      default:
        return "opus";
    }
  }
  return {};
}

bool starts_family(const std::string& model, std::string_view family) {
  if (model.compare(0, family.size(), family) != 0)
    return false;
  // The family itself, or a dated or suffixed version of it
  // (claude-opus-4 must not take claude-opus-4-5's price).
  if (model.size() == family.size())
    return true;
  if (model[family.size()] != '-' && model[family.size()] != '@')
    return false;
  auto next = family.size() + 1;
  // "-2025..." is a date and "-latest" an alias; "-5" would be another
  // family.
  return model.compare(next, std::string::npos, "latest") == 0
         || (model.size() - next >= 8
             && model.find_first_not_of("0123456789", next) >= next + 8);
}

// Sets each of `a`'s token counts to `f` of it and `b`'s.
template <class F>
void combine_counts(usage& a, const usage& b, F f) {
  a.input_tokens = f(a.input_tokens, b.input_tokens);
  a.output_tokens = f(a.output_tokens, b.output_tokens);
  a.cache_read_tokens = f(a.cache_read_tokens, b.cache_read_tokens);
  a.cache_write_tokens = f(a.cache_write_tokens, b.cache_write_tokens);
}

} // namespace

cost_range default_cost_estimate(const std::string& kind, model_tier tier) {
  bool session = kind == "claude-code";
  switch (tier) {
    case model_tier::fast:
      return session ? cost_range{0.01, 0.20} : cost_range{0.001, 0.01};
    case model_tier::balanced:
      return session ? cost_range{0.05, 1.00} : cost_range{0.005, 0.10};
    default:
      return session ? cost_range{0.20, 5.00} : cost_range{0.02, 0.50};
  }
}

cost_range estimated_cost(const plan_settings& settings, const workstream& ws) {
  if (!is_agent_executor(ws.executor.kind))
    return {};
  if (!ws.estimate_usd.empty())
    return ws.estimate_usd;
  if (auto i = settings.cost_estimates.find(to_string(ws.model));
      i != settings.cost_estimates.end())
    return i->second;
  return default_cost_estimate(ws.executor.kind, ws.model);
}

bool deep_tier_cost(const plan_settings& settings, const workstream& ws,
                    const usage& u, double& out) {
  auto deep = ws;
  deep.model = model_tier::deep;
  deep.executor.model.clear();
  model_price price;
  auto model = resolve_model(settings, deep);
  if (model.empty() || !find_price(settings, model, price))
    return false;
  out = cost_usd(u, price);
  return true;
}

bool is_agent_executor(const std::string& kind) {
  return kind == "anthropic" || kind == "openai" || kind == "claude-code";
}

std::string resolve_model(const plan_settings& settings, const workstream& ws) {
  if (!ws.executor.model.empty() || !is_agent_executor(ws.executor.kind))
    return ws.executor.model;
  auto i = settings.models.find(to_string(ws.model));
  if (i != settings.models.end())
    return i->second;
  return default_model(ws.executor.kind, ws.model);
}

bool find_price(const plan_settings& settings, const std::string& model,
                model_price& out) {
  if (auto i = settings.prices.find(model); i != settings.prices.end()) {
    out = i->second;
    return true;
  }
  // The Claude Code CLI's aliases name the current model of a family.
  static const std::pair<std::string_view, std::string_view> aliases[] = {
    {"haiku", "claude-haiku-4-5"},
    {"sonnet", "claude-sonnet-4-5"},
    {"opus", "claude-opus-4-5"}};
  std::string_view name = model;
  for (auto& [alias, family] : aliases)
    if (model == alias)
      name = family;
  for (auto& p : builtin_prices) {
    if (starts_family(std::string{name}, p.family)) {
      out = p.price;
      return true;
    }
  }
  return false;
}

double cost_usd(const usage& u, const model_price& price) {
  return (static_cast<double>(u.input_tokens) * price.input
          + static_cast<double>(u.output_tokens) * price.output
          + static_cast<double>(u.cache_read_tokens) * price.cache_read
          + static_cast<double>(u.cache_write_tokens) * price.cache_write)
         / 1e6;
}

int64_t sum_tokens(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out))
    return b > 0 ? std::numeric_limits<int64_t>::max()
                 : std::numeric_limits<int64_t>::min();
  return out;
}

usage& operator+=(usage& total, const usage& x) {
  combine_counts(total, x, sum_tokens);
  total.cost_usd += x.cost_usd;
  return total;
}

void add_usage(std::vector<usage>& totals, const usage& x) {
  auto i = totals.begin();
  while (i != totals.end() && i->model < x.model)
    ++i;
  if (i == totals.end() || i->model != x.model)
    i = totals.insert(i, usage{x.model});
  *i += x;
}

std::vector<usage> usage_less(const std::vector<usage>& all,
                              const std::vector<usage>& part) {
  // A part below zero (from a peer that should know better) takes nothing.
  auto less = [](int64_t a, int64_t b) {
    return b <= 0 ? a : a > b ? a - b : 0;
  };
  std::vector<usage> out;
  for (auto& u : all) {
    auto left = u;
    for (auto& p : part) {
      if (p.model != u.model)
        continue;
      combine_counts(left, p, less);
      left.cost_usd = std::max(0.0, left.cost_usd - p.cost_usd);
    }
    if (left.input_tokens != 0 || left.output_tokens != 0
        || left.cache_read_tokens != 0 || left.cache_write_tokens != 0
        || left.cost_usd > 0)
      out.push_back(left);
  }
  return out;
}

} // namespace troupe

// The config file: where `troupe` finds it, what it sets for runs and
// providers, how a plan's settings win over it, what `troupe config show`
// says of it, and that a bad one stops everything before it starts.

#include <filesystem>
#include <map>
#include <string>

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli.hpp"
#include "support/mock_llm.hpp"
#include "support/report.hpp"
#include "support/temp_dir.hpp"

using namespace troupe;
using nlohmann::json;
using troupe::test::run_troupe;
using troupe::test::sh_quote;
namespace fs = std::filesystem;

namespace {

constexpr auto secret_key = "sk-ant-config-k3y-never-printed";

// No provider settings from the environment running the tests: the
// config file alone says where to go.
constexpr auto no_provider_env =
  "unset ANTHROPIC_BASE_URL ANTHROPIC_API_KEY OPENAI_BASE_URL "
  "OPENAI_API_KEY TROUPE_CONFIG; ";

// The entry of `key` in one of `config show --json`'s sections.
json entry(const json& shown, const std::string& section,
           const std::string& key) {
  for (auto& e : shown.at(section))
    if (e.at("key") == key)
      return e;
  FAIL("no " << key << " in " << section << ": " << shown.at(section).dump());
  return {};
}

// A key file of its own directory (a secret kept apart from the run's).
std::string write_key(const test::temp_dir& secrets) {
  auto file = secrets.write("anthropic.key", std::string{secret_key} + "\n");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  return file;
}

} // namespace

TEST_CASE("config show says where each value comes from: default, config "
          "file, plan or environment, and shows no key",
          "[integration][config]") {
  test::temp_dir dir;
  test::temp_dir secrets;
  auto key_file = write_key(secrets);
  dir.write("prompts/qa.md", "You test everything twice.\n");
  auto config = dir.write("troupe.yaml", R"(settings:
  max_parallel_agents: 6
  models: {fast: config-fast, deep: config-deep}
  limits: {persona: {qa: 2}}
  personas:
    qa: {file: prompts/qa.md}
providers:
  anthropic: {api_key_file: )" + key_file + R"(, retries: 7, read_timeout_s: 90}
  openai: {base_url: "http://127.0.0.1:9/v1/"}
)");
  auto plan = dir.write("plan.yaml", R"(name: shown
settings: {models: {deep: plan-deep}, limits: {persona: {docs: 1}}}
workstreams:
  - {id: a, executor: {kind: sleep, seconds: 0}}
)");
  auto r = run_troupe({"config", "show", plan, "--json", "--config", config},
                      dir.str(),
                      std::string{no_provider_env}
                        + "export OPENAI_API_KEY=sk-openai-env-secret; ");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto shown = json::parse(r.out);
  CHECK(shown["config_file"] == config);
  CHECK(shown["found_by"] == "--config");
  auto from_config = "config " + config;
  auto from_plan = "plan " + plan;
  CHECK(entry(shown, "settings", "max_parallel_agents")["value"] == 6);
  CHECK(entry(shown, "settings", "max_parallel_agents")["from"] == from_config);
  CHECK(entry(shown, "settings", "default_timeout_s")["from"] == "default");
  // Maps merge entry by entry: the plan's deep, the config's fast.
  CHECK(entry(shown, "settings", "models.fast")["value"] == "config-fast");
  CHECK(entry(shown, "settings", "models.fast")["from"] == from_config);
  CHECK(entry(shown, "settings", "models.deep")["value"] == "plan-deep");
  CHECK(entry(shown, "settings", "models.deep")["from"] == from_plan);
  CHECK(entry(shown, "settings", "limits.persona.qa")["from"] == from_config);
  CHECK(entry(shown, "settings", "limits.persona.docs")["from"] == from_plan);
  CHECK(entry(shown, "tiers", "fast")["value"].get<std::string>().find(
          "anthropic: config-fast")
        != std::string::npos);
  CHECK(entry(shown, "personas", "qa")["from"]
        == from_config + " (file " + (dir.path() / "prompts/qa.md").string()
             + ")");
  CHECK(entry(shown, "personas", "backend")["from"] == "built-in");
  CHECK(entry(shown, "providers", "providers.anthropic.api_key")["value"]
        == "set");
  CHECK(entry(shown, "providers", "providers.anthropic.api_key")["from"]
        == "file " + key_file);
  CHECK(entry(shown, "providers", "providers.anthropic.retries")["value"] == 7);
  CHECK(entry(shown, "providers", "providers.anthropic.read_timeout_s")["value"]
        == 90);
  CHECK(entry(shown, "providers", "providers.anthropic.base_url")["from"]
        == "default");
  CHECK(entry(shown, "providers", "providers.openai.base_url")["value"]
        == "http://127.0.0.1:9/v1");
  CHECK(entry(shown, "providers", "providers.openai.api_key")["from"]
        == "env OPENAI_API_KEY");
  for (auto& text : {r.out, r.err}) {
    CHECK(text.find(secret_key) == std::string::npos);
    CHECK(text.find("sk-openai-env-secret") == std::string::npos);
  }
  // The same as text, for people.
  auto t = run_troupe({"config", "show", "--config", config}, dir.str(),
                      no_provider_env);
  REQUIRE(t.exit_code == 0);
  CHECK(t.out.find("max_parallel_agents") != std::string::npos);
  CHECK(t.out.find(secret_key) == std::string::npos);
}

TEST_CASE("the config file is found by --config, TROUPE_CONFIG, then the "
          "default path, and the environment wins over it",
          "[integration][config]") {
  test::temp_dir dir;
  test::temp_dir home;
  home.write("troupe/config.yaml", "settings: {max_parallel_agents: 3}\n");
  auto named = dir.write("named.yaml", "settings: {max_parallel_agents: 5}\n");
  auto flagged = dir.write("flag.yaml", R"(settings: {max_parallel_agents: 7}
providers: {anthropic: {base_url: "http://127.0.0.1:1"}}
)");
  auto show = [&](const std::vector<std::string>& args,
                  const std::string& env) {
    std::vector<std::string> all{"config", "show", "--json"};
    all.insert(all.end(), args.begin(), args.end());
    auto r = run_troupe(all, dir.str(),
                        std::string{no_provider_env} + "export XDG_CONFIG_HOME="
                          + sh_quote(home.str()) + "; " + env);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return json::parse(r.out);
  };
  auto by_default = show({}, "");
  CHECK(by_default["found_by"] == "default path");
  CHECK(entry(by_default, "settings", "max_parallel_agents")["value"] == 3);
  auto by_env = show({}, "export TROUPE_CONFIG=" + sh_quote(named) + "; ");
  CHECK(by_env["found_by"] == "TROUPE_CONFIG");
  CHECK(entry(by_env, "settings", "max_parallel_agents")["value"] == 5);
  auto by_flag = show({"--config", flagged},
                      "export TROUPE_CONFIG=" + sh_quote(named)
                        + " ANTHROPIC_BASE_URL=http://127.0.0.1:2; ");
  CHECK(by_flag["found_by"] == "--config");
  CHECK(entry(by_flag, "settings", "max_parallel_agents")["value"] == 7);
  auto url = entry(by_flag, "providers", "providers.anthropic.base_url");
  CHECK(url["value"] == "http://127.0.0.1:2");
  CHECK(url["from"] == "env ANTHROPIC_BASE_URL");
  // No file at the default path is no error.
  auto none = run_troupe({"config", "show", "--json"}, dir.str(),
                         std::string{no_provider_env}
                           + "export XDG_CONFIG_HOME=" + sh_quote(dir.str())
                           + "/nowhere; ");
  REQUIRE(none.exit_code == 0);
  CHECK(json::parse(none.out)["config_file"].is_null());
}

TEST_CASE("a run reaches its provider, models and persona prompts as the "
          "config file says, and the plan's settings win",
          "[integration][config][llm]") {
  test::temp_dir dir;
  test::temp_dir secrets;
  test::mock_llm mock{secrets.path()};
  auto key_file = write_key(secrets);
  secrets.write("analyzer.md", "You are the config's analyzer.\n");
  auto config = secrets.write("config.yaml", R"(settings:
  models: {fast: config-fast, balanced: config-balanced}
  personas:
    analyzer: {file: analyzer.md}
providers:
  anthropic: {base_url: ")" + mock.url() + R"(", api_key_file: )" + key_file
                                               + R"(}
)");
  auto plan = dir.write("plan.yaml", R"(name: configured
settings: {models: {balanced: plan-balanced}}
workstreams:
  - {id: scout, persona: analyzer, agent: explore, prompt: "Look.",
     executor: {kind: anthropic}}
  - {id: build, persona: backend, prompt: "Build.", depends_on: [scout],
     owns: [src/**], executor: {kind: anthropic}}
)");
  auto report = (dir.path() / "report.json").string();
  auto r = run_troupe({"run", plan, "-q", "--no-journal", "--report", report,
                       "--events", (dir.path() / "events.jsonl").string(),
                       "--config", config},
                      dir.str(), no_provider_env);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto reqs = mock.requests();
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0]["headers"]["x-api-key"] == secret_key);
  CHECK(reqs[0]["body"]["model"] == "config-fast");
  CHECK(reqs[0]["body"]["system"] == "You are the config's analyzer.\n");
  CHECK(reqs[1]["body"]["model"] == "plan-balanced");
  // Personas the config leaves alone keep their built-in prompts.
  CHECK(reqs[1]["body"]["system"]
        == test::read_text(fs::path{TROUPE_SOURCE_DIR}
                           / "runtime/personas/backend.md"));
  CHECK(r.out.find(secret_key) == std::string::npos);
  CHECK(r.err.find(secret_key) == std::string::npos);
  CHECK(test::text_under(dir.path()).find(secret_key) == std::string::npos);
}

TEST_CASE("a config file that asks for confirmation holds every run for "
          "it, unless the plan says otherwise",
          "[integration][config]") {
  test::temp_dir dir;
  auto config
    = dir.write("config.yaml", "settings: {confirm_before_execute: true}\n");
  auto plan = [&](const std::string& settings) {
    return dir.write("plan.yaml", "name: careful\n" + settings + R"(workstreams:
  - {id: a, agent: explore, executor: {kind: command, run: "echo ran >> ran.txt"}}
)");
  };
  auto run = [&](const std::string& file) {
    return run_troupe({"run", file, "-q", "--no-journal", "--config", config},
                      dir.str(), std::string{no_provider_env} + "</dev/null ");
  };
  auto refused = run(plan(""));
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.err, Catch::Contains("settings.confirm_before_execute"));
  CHECK_THAT(refused.err, Catch::Contains("--yes"));
  CHECK_FALSE(fs::exists(dir.path() / "ran.txt"));
  auto waived = run(plan("settings: {confirm_before_execute: false}\n"));
  INFO(waived.err);
  CHECK(waived.exit_code == 0);
  CHECK(dir.read("ran.txt") == "ran\n");
}

TEST_CASE("a bad config file stops every command that uses it, naming the "
          "file and the field, before anything runs",
          "[integration][config]") {
  test::temp_dir dir;
  auto plan = dir.write("plan.yaml", R"(name: untouched
workstreams:
  - {id: a, executor: {kind: command, run: "touch ran"}}
)");
  struct bad {
    std::string text;
    std::string error;
  };
  std::vector<bad> cases{
    {"settings: {max_parallel_agents: 0}\n",
     "error: settings.max_parallel_agents: must be at least 1, got 0"},
    {"settings: {max_paralel_agents: 2}\n",
     "error: settings.max_paralel_agents: unknown field"},
    {"providers: {anthropic: {retries: many}}\n",
     "error: providers.anthropic.retries: expected a whole number"},
    {"providers: {anthropic: {base_url: \"ftp://x\"}}\n",
     "error: providers.anthropic.base_url: must start with http:// or "
     "https://"},
    {"providers: {anthropic: {api_key_file: missing.key}}\n",
     "error: providers.anthropic.api_key_file: cannot read "},
    {"providers: {mistral: {}}\n", "error: providers.mistral: unknown key"},
    {"settings: {personas: {qa: {file: nowhere.md}}}\n",
     "error: settings.personas.qa.file: cannot read "},
    {"settings: {personas: {qa: \"\"}}\n",
     "error: settings.personas.qa: must not be empty"},
    {"settings: [1, 2\n", "error: invalid YAML at line 2"},
    {"- a list\n", "error: expected a mapping, got a list"},
  };
  for (auto& c : cases) {
    auto config = dir.write("config.yaml", c.text);
    for (auto cmd : {"run", "validate", "plan"}) {
      auto r = run_troupe({cmd, plan, "--config", config}, dir.str(),
                          no_provider_env);
      INFO(cmd << " with " << c.text << r.err);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find(config + ": " + c.error) != std::string::npos);
    }
  }
  // A key file that is a FIFO is refused, not waited on.
  auto fifo = dir.str() + "/key.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto fifo_config = dir.write(
    "fifo.yaml", "providers: {anthropic: {api_key_file: " + fifo + "}}\n");
  auto waited = run_troupe({"validate", plan, "--config", fifo_config},
                           dir.str(), no_provider_env);
  CHECK(waited.exit_code == 2);
  CHECK(waited.err.find("cannot read " + fifo + ": not a regular file")
        != std::string::npos);
  auto missing = run_troupe({"run", plan, "--config", dir.str() + "/none.yaml"},
                            dir.str(), no_provider_env);
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("none.yaml: error: cannot read the config file: No "
                         "such file or directory")
        != std::string::npos);
  auto named = run_troupe({"validate", plan}, dir.str(),
                          "export TROUPE_CONFIG=" + sh_quote(dir.str())
                            + "/gone.yaml; ");
  CHECK(named.exit_code == 2);
  CHECK(named.err.find("gone.yaml: error: cannot read the config file")
        != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path() / "ran"));
}

TEST_CASE("plan --show-prompts prints each agent's system prompt and task as "
          "a run sends them",
          "[integration][config]") {
  test::temp_dir dir;
  auto config = dir.write("config.yaml",
                          "settings: {personas: {reviewer: \"Review it "
                          "strictly.\"}}\n");
  auto plan = dir.write("plan.yaml", R"(name: prompts
workstreams:
  - {id: api, persona: backend, prompt: "Write the API.", owns: [src/**],
     executor: {kind: anthropic}}
  - {id: review, persona: reviewer, prompt: "Review the API.",
     depends_on: [api], executor: {kind: openai, model: llama3}}
  - {id: lint, executor: {kind: command, run: "true"}}
)");
  auto r = run_troupe({"plan", plan, "--show-prompts", "--config", config},
                      dir.str(), no_provider_env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto backend = test::read_text(fs::path{TROUPE_SOURCE_DIR}
                                 / "runtime/personas/backend.md");
  CHECK(r.out.find("=== api (backend, anthropic, claude-sonnet-4-5)\n"
                   "--- system prompt (built-in)\n"
                   + backend + "--- task\nWrite the API.\n")
        != std::string::npos);
  CHECK(r.out.find("=== review (reviewer, openai, llama3)\n"
                   "--- system prompt (settings)\nReview it strictly.\n"
                   "--- task\nReview the API.\n\n"
                   "## Results of the work this task depends on\n\n"
                   "### api (at run time)\n[what api answers]\n")
        != std::string::npos);
  // A command without a prompt gets none.
  CHECK(r.out.find("=== lint") == std::string::npos);
  auto both = run_troupe({"plan", plan, "--show-prompts", "--json"},
                         dir.str(), no_provider_env);
  CHECK(both.exit_code == 2);
}

TEST_CASE("the agents example validates with each of its configs, and its "
          "local team runs against an OpenAI-compatible server",
          "[integration][config][llm]") {
  auto example = fs::path{TROUPE_SOURCE_DIR} / "examples/agents";
  std::string cli = TROUPE_TEST_CLAUDE_CLI;
  auto with_cli = std::string{no_provider_env} + "export TROUPE_CLAUDE_CLI="
                  + sh_quote(cli) + "; ";
  for (auto config : {"anthropic.yaml", "claude-code.yaml"}) {
    auto r = run_troupe({"validate", (example / "plan.yaml").string(),
                         "--config", (example / config).string()},
                        TROUPE_SOURCE_DIR, with_cli);
    INFO(config << ": " << r.err);
    CHECK(r.exit_code == 0);
  }
  // The config's own prompt for docs is the one the implementer gets.
  auto shown = run_troupe({"plan", (example / "plan.yaml").string(),
                           "--show-prompts", "--config",
                           (example / "claude-code.yaml").string()},
                          TROUPE_SOURCE_DIR, with_cli);
  REQUIRE(shown.exit_code == 0);
  CHECK(shown.out.find("--- system prompt (settings)\n"
                       + test::read_text(example / "prompts/docs.md"))
        != std::string::npos);
  CHECK(shown.out.find("Budget: $3.00") != std::string::npos);

  test::temp_dir dir;
  test::mock_llm mock{dir.path()};
  auto report = (dir.path() / "report.json").string();
  auto r = run_troupe({"run", (example / "plan-local.yaml").string(),
                       "--config", (example / "local.yaml").string(), "-q",
                       "--no-journal", "--report", report},
                      TROUPE_SOURCE_DIR,
                      std::string{no_provider_env} + "export OPENAI_BASE_URL="
                        + sh_quote(mock.url() + "/v1") + "; ");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto j = test::read_json_file(report);
  CHECK(j["status"] == "succeeded");
  CHECK(j["workstreams"].size() == 4);
  // Each tier's model is the config's, and costs nothing.
  CHECK(mock.requests().size() == 4);
  CHECK(test::workstream_of(j, "map-code")["usage"][0]["model"] == "llama3.2");
  // The synthesis agent is on the deep tier, and wrote the synthesis.
  CHECK(test::workstream_of(j, "synthesis")["usage"][0]["model"]
        == "llama3.1:70b");
  CHECK_THAT(j["synthesis"].get<std::string>(),
             Catch::StartsWith("mock reply"));
  CHECK(j["cost_usd"] == 0.0);
}

TEST_CASE("a persona prompt file of any bytes becomes text", "[integration][config]") {
  test::temp_dir dir;
  dir.write("odd.md", "Review \xff\xfe it \xCE\xB1.\n");
  auto config = dir.write("config.yaml",
                          "settings: {personas: {reviewer: {file: odd.md}}}\n");
  auto plan = dir.write("plan.yaml", R"(name: odd
workstreams:
  - {id: r, persona: reviewer, prompt: "Review.", executor: {kind: anthropic}}
)");
  auto shown = run_troupe({"config", "show", plan, "--json", "--config",
                           config},
                          dir.str(), no_provider_env);
  INFO(shown.err);
  REQUIRE(shown.exit_code == 0);
  auto j = json::parse(shown.out);
  CHECK(entry(j, "personas", "reviewer")["value"]
        == "21 bytes: Review \xEF\xBF\xBD\xEF\xBF\xBD it \xCE\xB1.");
  auto prompts = run_troupe({"plan", plan, "--show-prompts", "--config",
                             config},
                            dir.str(), no_provider_env);
  REQUIRE(prompts.exit_code == 0);
  CHECK(prompts.out.find("Review \xEF\xBF\xBD\xEF\xBF\xBD it \xCE\xB1.\n")
        != std::string::npos);
}

TEST_CASE("config show takes a config file whose name is not UTF-8",
          "[integration][config]") {
  test::temp_dir dir;
  auto config = dir.write("conf\xff.yaml", "settings: {max_parallel_agents: 3}\n");
  auto r = run_troupe({"config", "show", "--json", "--config", config},
                      dir.str(), no_provider_env);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto shown = json::parse(r.out);
  CHECK(shown["config_file"] == dir.str() + "/conf\xEF\xBF\xBD.yaml");
  CHECK(entry(shown, "settings", "max_parallel_agents")["value"] == 3);
}

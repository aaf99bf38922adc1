// The journal's writer: group commit on a thread of its own.

#include <optional>
#include <utility>

#include <caf/message.hpp>

#include "troupe/runtime/journal.hpp"

namespace troupe {

struct journal_writer::item {
  uint64_t ticket = 0;
  std::string run_id;
  /// A std::vector<event>, or (`is_report`) a run_report; read, never
  /// written, as others hold it too.
  caf::message content;
  int64_t ended = 0;
  bool is_report = false;
  double finished_at = 0;
  /// Set for a new run.
  std::optional<journal::new_run> begin;
};

journal_writer::journal_writer(std::shared_ptr<journal> j,
                               commit_fn on_commit)
  : journal_(std::move(j)), on_commit_(std::move(on_commit)) {
  thread_ = std::thread([this] { loop(); });
}

journal_writer::~journal_writer() {
  {
    std::lock_guard<std::mutex> lock{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t journal_writer::queue(item x) {
  std::lock_guard<std::mutex> lock{mtx_};
  x.ticket = ++next_ticket_;
  queue_.push_back(std::move(x));
  cv_.notify_all();
  return next_ticket_;
}

uint64_t journal_writer::begin_run(journal::new_run run) {
  item x;
  x.run_id = run.run_id;
  x.begin = std::move(run);
  return queue(std::move(x));
}

uint64_t journal_writer::append(const std::string& run_id,
                                caf::message events, int64_t ended) {
  item x;
  x.run_id = run_id;
  x.content = std::move(events);
  x.ended = ended;
  return queue(std::move(x));
}

uint64_t journal_writer::finish_run(caf::message report,
                                    double finished_at) {
  item x;
  x.is_report = true;
  x.content = std::move(report);
  x.finished_at = finished_at;
  return queue(std::move(x));
}

void journal_writer::sync() {
  std::unique_lock<std::mutex> lock{mtx_};
  auto target = next_ticket_;
  cv_.wait(lock, [&] { return committed_ >= target; });
}

void journal_writer::loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty())
      return; // stopping, and everything is in
    auto items = std::move(queue_);
    queue_ = {};
    lock.unlock();
    std::string error;
    std::vector<journal::batch> batches;
    std::vector<const journal::new_run*> new_runs;
    try {
      for (auto& x : items) {
        if (x.begin) {
          new_runs.push_back(&*x.begin);
          continue;
        }
        const auto& content = x.content;
        if (x.is_report || !content.match_elements<std::vector<event>>())
          continue;
        auto& events = content.get_as<std::vector<event>>(0);
        batches.push_back({x.run_id, events.data(), events.size(), x.ended});
      }
      if (!batches.empty() || !new_runs.empty())
        journal_->append(batches, new_runs);
      for (auto& x : items) {
        const auto& content = x.content;
        if (x.is_report && content.match_elements<run_report>())
          journal_->finish_run(content.get_as<run_report>(0), x.finished_at);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    auto last = items.back().ticket;
    if (on_commit_)
      on_commit_(last, error);
    lock.lock();
    committed_ = last;
    cv_.notify_all();
  }
}

} // namespace troupe

// The journal's writer: group commit on a thread of its own.

#include <utility>

#include "troupe/runtime/journal.hpp"

namespace troupe {

struct journal_writer::item {
  uint64_t ticket = 0;
  journal::batch events;
  /// Set for a report.
  bool is_report = false;
  run_report report;
  double finished_at = 0;
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

uint64_t journal_writer::append(const std::string& run_id,
                                std::vector<event> events, int64_t ended) {
  std::lock_guard<std::mutex> lock{mtx_};
  auto& x = queue_.emplace_back();
  x.ticket = ++next_ticket_;
  x.events.run_id = run_id;
  x.events.events = std::move(events);
  x.events.ended = ended;
  cv_.notify_all();
  return x.ticket;
}

uint64_t journal_writer::finish_run(run_report report, double finished_at) {
  std::lock_guard<std::mutex> lock{mtx_};
  auto& x = queue_.emplace_back();
  x.ticket = ++next_ticket_;
  x.is_report = true;
  x.report = std::move(report);
  x.finished_at = finished_at;
  cv_.notify_all();
  return x.ticket;
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
    try {
      for (auto& x : items)
        if (!x.is_report)
          batches.push_back(std::move(x.events));
      if (!batches.empty())
        journal_->append(batches);
      for (auto& x : items)
        if (x.is_report)
          journal_->finish_run(x.report, x.finished_at);
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

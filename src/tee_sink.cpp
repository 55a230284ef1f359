#include "foxml/events/tee_sink.hpp"

#include <algorithm>
#include <stdexcept>

namespace foxml::events {

tee_sink::tee_sink(std::vector<std::unique_ptr<sink>> branches) : branches_(std::move(branches)) {
  if (branches_.empty()) throw std::invalid_argument("foxml::events: a tee needs at least one sink");
  for (const auto& branch : branches_) {
    if (!branch) throw std::invalid_argument("foxml::events: a tee must not hold a null sink");
  }
}

std::size_t tee_sink::write(const line_batch& batch) noexcept {
  std::size_t most = 0;
  for (auto& branch : branches_) most = std::max(most, std::min(branch->write(batch), batch.size()));
  return most;
}

bool tee_sink::flush() noexcept {
  bool any = false;
  for (auto& branch : branches_) any = branch->flush() || any;
  return any;
}

void tee_sink::close() noexcept {
  for (auto& branch : branches_) branch->close();
}

bool tee_sink::healthy() noexcept {
  bool any = false;
  for (auto& branch : branches_) any = branch->healthy() || any;
  return any;
}

std::size_t tee_sink::reclaim(line_batch& out) noexcept {
  if (branches_.size() == 1) return branches_.front()->reclaim(out);
  // With several branches, a line one branch lost is normally held by another; reporting it as a
  // drop would count it lost while it is not (see the class comment).
  for (auto& branch : branches_) {
    discarded_.clear();
    branch->reclaim(discarded_);
  }
  discarded_.clear();
  return 0;
}

void tee_sink::poll(std::chrono::steady_clock::time_point now) noexcept {
  for (auto& branch : branches_) branch->poll(now);
}

std::unique_ptr<sink> tee_sink::reopen_after_fork() const {
  std::vector<std::unique_ptr<sink>> reopened;
  for (const auto& branch : branches_) {
    if (auto copy = branch->reopen_after_fork()) reopened.push_back(std::move(copy));
  }
  if (reopened.empty()) return nullptr;
  return std::make_unique<tee_sink>(std::move(reopened));
}

std::string tee_sink::describe() const {
  std::string text;
  for (const auto& branch : branches_) {
    if (!text.empty()) text += " | ";
    text += branch->describe();
  }
  return text;
}

}  // namespace foxml::events

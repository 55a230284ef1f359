#include "foxml/events/fallback_sink.hpp"

#include <algorithm>
#include <stdexcept>

namespace foxml::events {
namespace {

void copy_lines(const line_batch& from, std::size_t first, std::size_t last, line_batch& to) {
  for (std::size_t i = first; i < last; ++i) to.append(from.line(i), from.seq(i));
}

}  // namespace

fallback_sink::fallback_sink(std::vector<std::unique_ptr<sink>> chain, fallback_options options)
    : options_(options) {
  if (chain.empty()) throw std::invalid_argument("foxml::events: a fallback chain needs at least one sink");
  if (options_.retry_min.count() <= 0 || options_.retry_max < options_.retry_min) {
    throw std::invalid_argument("foxml::events: fallback retry_min must be positive and at most retry_max");
  }
  for (auto& target : chain) {
    if (!target) throw std::invalid_argument("foxml::events: a fallback chain must not hold a null sink");
    link l;
    l.target = std::move(target);
    l.backoff = options_.retry_min;
    links_.push_back(std::move(l));
  }
}

bool fallback_sink::usable(std::size_t i, std::chrono::steady_clock::time_point now) noexcept {
  if (i + 1 == links_.size()) return true;
  link& l = links_[i];
  if (l.failing && now < l.retry_at) return false;
  return l.target->healthy();
}

std::size_t fallback_sink::route(const line_batch& batch, std::size_t first,
                                 std::chrono::steady_clock::time_point now) noexcept {
  std::size_t placed = 0;
  for (std::size_t i = first; i < links_.size() && placed < batch.size(); ++i) {
    if (!usable(i, now)) continue;
    const line_batch* part = &batch;
    if (placed != 0) {
      // Copying the rest costs only when a sink refused part of a batch, which is rare.
      rest_.clear();
      copy_lines(batch, placed, batch.size(), rest_);
      part = &rest_;
    }
    link& l = links_[i];
    const std::size_t taken = std::min(l.target->write(*part), part->size());
    if (taken < part->size()) {
      l.backoff = l.failing ? std::min(l.backoff * 2, options_.retry_max) : options_.retry_min;
      l.failing = true;
      l.retry_at = now + l.backoff;
    } else {
      l.failing = false;
      l.backoff = options_.retry_min;
    }
    if (taken != 0 && first == 0) note_serving(i, part->seq(0));
    placed += taken;
  }
  return placed;
}

void fallback_sink::note_serving(std::size_t i, std::uint64_t seq) noexcept {
  if (i == serving_) return;
  const std::size_t before = serving_;
  const std::uint64_t since = serving_since_;
  serving_ = i;
  serving_since_ = seq;
  if (before == static_cast<std::size_t>(-1)) return;  // the first lines: nothing moved
  constexpr std::size_t max_notices = 64;
  try {
    if (notices_.size() >= max_notices) notices_.pop_front();
    const std::string from = links_[before].target->describe();
    const std::string to = links_[i].target->describe();
    if (i > before) {
      notices_.push_back("foxml-events: " + from + " fell behind; events from seq " + std::to_string(seq) +
                         " continue in " + to);
    } else {
      notices_.push_back("foxml-events: " + to + " took over again at seq " + std::to_string(seq) +
                         "; events since seq " + std::to_string(since) + " went to " + from);
    }
  } catch (...) {
    // Out of memory: the notice is lost; the events themselves are where they are.
  }
}

bool fallback_sink::take_notice(std::string& message) noexcept {
  for (link& l : links_) {
    if (l.target->take_notice(message)) return true;
  }
  if (notices_.empty()) return false;
  message.swap(notices_.front());
  notices_.pop_front();
  return true;
}

std::size_t fallback_sink::write(const line_batch& batch) noexcept {
  if (batch.empty()) return 0;
  return route(batch, 0, std::chrono::steady_clock::now());
}

void fallback_sink::collect_reclaimed(std::size_t i, line_batch& unplaced) noexcept {
  reclaimed_.clear();
  // Two statements: in one call's arguments, size() could be read before reclaim() fills the batch.
  const std::size_t told = links_[i].target->reclaim(reclaimed_);
  const std::size_t n = std::min(told, reclaimed_.size());
  if (n == 0) return;
  // The link lost these after taking them; they go to the links after it (never back to it, so
  // no sink ever holds a line twice), and what none of those takes is reported as lost.
  const std::size_t placed = route(reclaimed_, i + 1, std::chrono::steady_clock::now());
  copy_lines(reclaimed_, placed, n, unplaced);
}

std::size_t fallback_sink::reclaim(line_batch& out) noexcept {
  for (std::size_t i = 0; i < links_.size(); ++i) collect_reclaimed(i, orphans_);
  const std::size_t n = orphans_.size();
  copy_lines(orphans_, 0, n, out);
  orphans_.clear();
  return n;
}

void fallback_sink::poll(std::chrono::steady_clock::time_point now) noexcept {
  for (link& l : links_) l.target->poll(now);
}

bool fallback_sink::flush() noexcept {
  bool any = false;
  for (link& l : links_) any = l.target->flush() || any;
  return any;
}

void fallback_sink::close() noexcept {
  // In chain order, so what a closing link hands back still finds the links after it open.
  for (std::size_t i = 0; i < links_.size(); ++i) {
    links_[i].target->close();
    collect_reclaimed(i, orphans_);
  }
  // Nothing is left to take the orphans: they stay for one last reclaim(), which the worker
  // makes after close to count them.
}

bool fallback_sink::healthy() noexcept {
  for (link& l : links_) {
    if (l.target->healthy()) return true;
  }
  return false;
}

std::unique_ptr<sink> fallback_sink::reopen_after_fork() const {
  std::vector<std::unique_ptr<sink>> reopened;
  for (const link& l : links_) {
    if (auto copy = l.target->reopen_after_fork()) reopened.push_back(std::move(copy));
  }
  if (reopened.empty()) return nullptr;
  return std::make_unique<fallback_sink>(std::move(reopened), options_);
}

std::string fallback_sink::describe() const {
  std::string text;
  for (const link& l : links_) {
    if (!text.empty()) text += ',';
    text += l.target->describe();
  }
  return text;
}

}  // namespace foxml::events

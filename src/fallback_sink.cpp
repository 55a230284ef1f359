#include "foxml/events/fallback_sink.hpp"

#include <algorithm>
#include <stdexcept>

namespace foxml::events {

fallback_sink::fallback_sink(std::vector<std::unique_ptr<sink>> chain, fallback_options options)
    : composite_sink(std::move(chain), "fallback chain", ","), options_(options) {
  if (options_.retry_min.count() <= 0 || options_.retry_max < options_.retry_min) {
    throw std::invalid_argument("foxml::events: fallback retry_min must be positive and at most retry_max");
  }
  links_.resize(size());
  for (link& l : links_) l.backoff = options_.retry_min;
}

std::unique_ptr<sink> fallback_sink::remake(std::vector<std::unique_ptr<sink>> chain) const {
  return std::make_unique<fallback_sink>(std::move(chain), options_);
}

bool fallback_sink::usable(std::size_t i, std::chrono::steady_clock::time_point now) noexcept {
  if (i + 1 == links_.size()) return true;
  const link& l = links_[i];
  if (l.failing && now < l.retry_at) return false;
  return at(i).healthy();
}

std::size_t fallback_sink::route(const line_batch& batch, std::size_t first,
                                 std::chrono::steady_clock::time_point now) noexcept {
  std::size_t placed = 0;
  for (std::size_t i = first; i < links_.size() && placed < batch.size(); ++i) {
    if (!usable(i, now)) continue;
    const line_batch* part = &batch;
    if (placed != 0) {
      // Copying the rest costs only when a sink refused part of a batch, which is rare. Out of
      // memory, what was not copied is refused: the caller retries or counts it.
      rest_.clear();
      if (rest_.append_lines(batch, placed, batch.size()) == 0) break;
      part = &rest_;
    }
    link& l = links_[i];
    const std::size_t taken = std::min(at(i).write(*part), part->size());
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
    const std::string from = at(before).describe();
    const std::string to = at(i).describe();
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
  if (composite_sink::take_notice(message)) return true;
  if (notices_.empty()) return false;
  message.swap(notices_.front());
  notices_.pop_front();
  return true;
}

std::size_t fallback_sink::write(const line_batch& batch) noexcept {
  if (batch.empty()) return 0;
  return route(batch, 0, std::chrono::steady_clock::now());
}

void fallback_sink::collect_reclaimed(std::size_t i) noexcept {
  reclaimed_.clear();
  // Two statements: in one call's arguments, size() could be read before reclaim() fills the batch.
  const std::size_t told = at(i).reclaim(reclaimed_);
  const std::size_t n = std::min(told, reclaimed_.size());
  orphans_untold_ += told - n;  // lost by the link without their text: nothing to re-route
  if (n == 0) return;
  // The link lost these after taking them; they go to the links after it (never back to it, so
  // no sink ever holds a line twice), and what none of those takes is reported as lost.
  const std::size_t placed = route(reclaimed_, i + 1, std::chrono::steady_clock::now());
  const std::size_t unplaced = n - std::min(placed, n);
  orphans_untold_ += unplaced - orphans_.append_lines(reclaimed_, placed, n);
}

std::size_t fallback_sink::reclaim(line_batch& out) noexcept {
  for (std::size_t i = 0; i < links_.size(); ++i) collect_reclaimed(i);
  const std::size_t n = orphans_.size();
  const std::size_t lost = n + orphans_untold_;
  out.append_lines(orphans_, 0, n);  // what memory does not allow to copy is still counted in `lost`
  orphans_.clear();
  orphans_untold_ = 0;
  return lost;
}

void fallback_sink::close() noexcept {
  // In chain order, so what a closing link hands back still finds the links after it open.
  for (std::size_t i = 0; i < links_.size(); ++i) {
    at(i).close();
    collect_reclaimed(i);
  }
  // Nothing is left to take the orphans: they stay for one last reclaim(), which the worker
  // makes after close to count them.
}

}  // namespace foxml::events

#include "foxml/events/tee_sink.hpp"

#include <algorithm>
#include <stdexcept>

namespace foxml::events {

tee_sink::tee_sink(std::vector<std::unique_ptr<sink>> branches, tee_options options)
    : composite_sink(std::move(branches), "tee", " | "), options_(options) {
  branches_.resize(size());
  took_.resize(size());
}

std::unique_ptr<sink> tee_sink::remake(std::vector<std::unique_ptr<sink>> branches) const {
  return std::make_unique<tee_sink>(std::move(branches), options_);
}

std::size_t tee_sink::write(const line_batch& batch) noexcept {
  if (branches_.size() == 1) return at(0).write(batch);
  const auto now = std::chrono::steady_clock::now();
  std::size_t most = 0;
  std::fill(took_.begin(), took_.end(), 0);
  for (std::size_t i = 0; i < branches_.size(); ++i) {
    // A lagging branch takes nothing new before its backlog: its lines stay in order.
    if (!drain(i, now)) continue;
    took_[i] = std::min(at(i).write(batch), batch.size());
    most = std::max(most, took_[i]);
  }
  // Lines nobody took are refused: the emitter retries them. The others are ours now, and every
  // branch that did not take them holds them back.
  for (std::size_t i = 0; i < branches_.size(); ++i) {
    if (took_[i] < most) hold(branches_[i], batch, took_[i], most, now);
  }
  return most;
}

bool tee_sink::drain(std::size_t i, std::chrono::steady_clock::time_point now) noexcept {
  branch& b = branches_[i];
  if (b.backlog.empty()) return true;
  const std::size_t took = std::min(at(i).write(b.backlog), b.backlog.size());
  for (std::size_t k = 0; k < took; ++k) release(b.backlog.seq(k));
  b.backlog.remove_front(took);  // shrinks in place: no allocation
  if (b.backlog.empty()) {
    b.stalled = false;
    return true;
  }
  if (took != 0 || !b.stalled) {
    b.stalled = true;
    b.stalled_since = now;
  } else if (now - b.stalled_since >= options_.retry_timeout) {
    lose_backlog(b);
    return true;
  }
  return false;
}

void tee_sink::hold(branch& b, const line_batch& batch, std::size_t first, std::size_t last,
                    std::chrono::steady_clock::time_point now) noexcept {
  if (b.backlog.empty()) {
    b.stalled = true;
    b.stalled_since = now;
  }
  for (std::size_t i = first; i < last; ++i) {
    const std::string_view line = batch.line(i);
    const std::uint64_t seq = batch.seq(i);
    if (b.backlog.bytes() + line.size() > options_.backlog_bytes) {
      lose(b, line, seq);
      continue;
    }
    try {
      b.backlog.append(line, seq);
    } catch (...) {
      lose(b, line, seq);  // out of memory: lost to this branch, like a line over the bound
      continue;
    }
    try {
      ++pending_[seq].holders;
    } catch (...) {
      // Untracked, the line is still delivered; only a second branch losing it would count twice.
    }
  }
}

void tee_sink::lose(branch& b, std::string_view line, std::uint64_t seq) noexcept {
  ++b.lost;
  const auto it = pending_.find(seq);
  if (it != pending_.end()) {
    if (it->second.lost) return;  // another branch lost it already: counted once
    it->second.lost = true;
  }
  try {
    lost_.append(line, seq);
  } catch (...) {
    ++lost_untold_;  // out of memory: the emitter still counts it, without knowing its seq
  }
}

void tee_sink::lose_backlog(branch& b) noexcept {
  for (std::size_t i = 0; i < b.backlog.size(); ++i) {
    lose(b, b.backlog.line(i), b.backlog.seq(i));
    release(b.backlog.seq(i));
  }
  b.backlog.clear();
  b.stalled = false;
}

void tee_sink::release(std::uint64_t seq) noexcept {
  const auto it = pending_.find(seq);
  if (it != pending_.end() && --it->second.holders == 0) pending_.erase(it);
}

void tee_sink::flush() noexcept {
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < branches_.size(); ++i) drain(i, now);
  composite_sink::flush();
}

void tee_sink::close() noexcept {
  const auto now = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < branches_.size(); ++i) {
    branch& b = branches_[i];
    drain(i, now);
    lose_backlog(b);
    at(i).close();
    // What the branch still held unacknowledged is lost to it as well.
    returned_.clear();
    const std::size_t told = at(i).reclaim(returned_);
    for (std::size_t k = 0; k < returned_.size(); ++k) lose(b, returned_.line(k), returned_.seq(k));
    if (told > returned_.size()) {
      b.lost += told - returned_.size();
      lost_untold_ += told - returned_.size();
    }
  }
}

void tee_sink::take_back(std::size_t i) noexcept {
  branch& b = branches_[i];
  returned_.clear();
  const std::size_t told = at(i).reclaim(returned_);
  if (told > returned_.size()) {  // lost by the branch without their text: counted, not retried
    b.lost += told - returned_.size();
    lost_untold_ += told - returned_.size();
  }
  if (returned_.empty()) return;
  // Lines a branch took and then lost (a broken connection) go back to the head of its backlog:
  // it gets them again when it is back, or they are lost to it, counted.
  merged_.clear();
  std::swap(merged_, b.backlog);
  hold(b, returned_, 0, returned_.size(), std::chrono::steady_clock::now());
  for (std::size_t k = 0; k < merged_.size(); ++k) {
    const std::string_view line = merged_.line(k);
    bool kept = false;
    if (b.backlog.bytes() + line.size() <= options_.backlog_bytes) {
      try {
        b.backlog.append(line, merged_.seq(k));
        kept = true;
      } catch (...) {
      }
    }
    if (!kept) {
      lose(b, line, merged_.seq(k));
      release(merged_.seq(k));
    }
  }
}

std::size_t tee_sink::reclaim(line_batch& out) noexcept {
  if (branches_.size() == 1) return at(0).reclaim(out);
  for (std::size_t i = 0; i < branches_.size(); ++i) take_back(i);
  const std::size_t lost = lost_.size() + lost_untold_;
  out.append_lines(lost_, 0, lost_.size());  // out of memory, the rest is still in the count
  lost_.clear();
  lost_untold_ = 0;
  return lost;
}

void tee_sink::poll(std::chrono::steady_clock::time_point now) noexcept {
  composite_sink::poll(now);
  for (std::size_t i = 0; i < branches_.size(); ++i) drain(i, now);
}

std::size_t tee_sink::pending() const noexcept {
  std::size_t n = 0;
  for (const auto& b : branches_) n += b.backlog.size();
  return n;
}

}  // namespace foxml::events

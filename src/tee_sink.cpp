#include "foxml/events/tee_sink.hpp"

#include <algorithm>
#include <stdexcept>

namespace foxml::events {

tee_sink::tee_sink(std::vector<std::unique_ptr<sink>> branches, tee_options options) : options_(options) {
  if (branches.empty()) throw std::invalid_argument("foxml::events: a tee needs at least one sink");
  for (auto& out : branches) {
    if (!out) throw std::invalid_argument("foxml::events: a tee must not hold a null sink");
    branches_.push_back(branch{std::move(out), {}, {}, false, 0});
  }
  took_.resize(branches_.size());
}

std::size_t tee_sink::write(const line_batch& batch) noexcept {
  if (branches_.size() == 1) return branches_.front().out->write(batch);
  const auto now = std::chrono::steady_clock::now();
  std::size_t most = 0;
  std::fill(took_.begin(), took_.end(), 0);
  for (std::size_t i = 0; i < branches_.size(); ++i) {
    branch& b = branches_[i];
    // A lagging branch takes nothing new before its backlog: its lines stay in order.
    if (!drain(b, now)) continue;
    took_[i] = std::min(b.out->write(batch), batch.size());
    most = std::max(most, took_[i]);
  }
  // Lines nobody took are refused: the emitter retries them. The others are ours now, and every
  // branch that did not take them holds them back.
  for (std::size_t i = 0; i < branches_.size(); ++i) {
    if (took_[i] < most) hold(branches_[i], batch, took_[i], most, now);
  }
  return most;
}

bool tee_sink::drain(branch& b, std::chrono::steady_clock::time_point now) noexcept {
  if (b.backlog.empty()) return true;
  const std::size_t took = std::min(b.out->write(b.backlog), b.backlog.size());
  for (std::size_t i = 0; i < took; ++i) release(b.backlog.seq(i));
  b.backlog.remove_front(took);
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
    // Out of memory: counted for the branch, but the emitter cannot be told which seq it was.
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

bool tee_sink::flush() noexcept {
  const auto now = std::chrono::steady_clock::now();
  bool any = false;
  for (auto& b : branches_) {
    drain(b, now);
    any = b.out->flush() || any;
  }
  return any;
}

void tee_sink::close() noexcept {
  const auto now = std::chrono::steady_clock::now();
  for (auto& b : branches_) {
    drain(b, now);
    lose_backlog(b);
    b.out->close();
    // What the branch still held unacknowledged is lost to it as well.
    returned_.clear();
    b.out->reclaim(returned_);
    for (std::size_t i = 0; i < returned_.size(); ++i) lose(b, returned_.line(i), returned_.seq(i));
  }
}

bool tee_sink::healthy() noexcept {
  bool any = false;
  for (auto& b : branches_) any = b.out->healthy() || any;
  return any;
}

std::size_t tee_sink::reclaim(line_batch& out) noexcept {
  if (branches_.size() == 1) return branches_.front().out->reclaim(out);
  // Lines a branch took and then lost (a broken connection) go back to the head of its backlog:
  // it gets them again when it is back, or they are lost to it, counted.
  for (auto& b : branches_) {
    returned_.clear();
    if (b.out->reclaim(returned_) == 0 || returned_.empty()) continue;
    merged_.clear();
    try {
      std::swap(merged_, b.backlog);
      const auto now = std::chrono::steady_clock::now();
      hold(b, returned_, 0, returned_.size(), now);
      for (std::size_t i = 0; i < merged_.size(); ++i) {
        const std::string_view line = merged_.line(i);
        if (b.backlog.bytes() + line.size() > options_.backlog_bytes) {
          lose(b, line, merged_.seq(i));
          release(merged_.seq(i));
        } else {
          b.backlog.append(line, merged_.seq(i));
        }
      }
    } catch (...) {
      for (std::size_t i = 0; i < merged_.size(); ++i) release(merged_.seq(i));
    }
  }
  std::size_t count = 0;
  try {
    for (std::size_t i = 0; i < lost_.size(); ++i) out.append(lost_.line(i), lost_.seq(i));
    count = lost_.size();
  } catch (...) {
  }
  lost_.clear();
  return count;
}

void tee_sink::poll(std::chrono::steady_clock::time_point now) noexcept {
  for (auto& b : branches_) {
    b.out->poll(now);
    drain(b, now);
  }
}

bool tee_sink::take_notice(std::string& message) noexcept {
  for (auto& b : branches_) {
    if (b.out->take_notice(message)) return true;
  }
  return false;
}

std::size_t tee_sink::pending() const noexcept {
  std::size_t n = 0;
  for (const auto& b : branches_) n += b.backlog.size();
  return n;
}

std::unique_ptr<sink> tee_sink::reopen_after_fork() const {
  std::vector<std::unique_ptr<sink>> reopened;
  for (const auto& b : branches_) {
    if (auto copy = b.out->reopen_after_fork()) reopened.push_back(std::move(copy));
  }
  if (reopened.empty()) return nullptr;
  return std::make_unique<tee_sink>(std::move(reopened), options_);
}

std::string tee_sink::describe() const {
  std::string text;
  for (const auto& b : branches_) {
    if (!text.empty()) text += " | ";
    text += b.out->describe();
  }
  return text;
}

}  // namespace foxml::events

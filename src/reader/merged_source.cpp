#include "foxml/events/reader/merged_source.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace foxml::events::reader {
namespace {

// How long a child's poll waits before it checks for a stop: stop() wakes the child too, so this
// only bounds a wake that raced its poll.
constexpr std::chrono::milliseconds child_wait{200};

void signal_fd(int fd) noexcept {
  const std::uint64_t one = 1;
  // EAGAIN only when the counter is saturated: it is already readable.
  [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
}

void drain_fd(int fd) noexcept {
  std::uint64_t value = 0;
  [[maybe_unused]] const auto n = ::read(fd, &value, sizeof value);
}

}  // namespace

merged_source::merged_source(std::vector<std::unique_ptr<source>> children, merged_source_options options)
    : options_(options) {
  if (children.empty()) throw std::invalid_argument("foxml::events: merged_source needs at least one source");
  if (options_.max_lines == 0) options_.max_lines = 1;
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "foxml::events: eventfd");
  for (auto& input : children) {
    if (!input) throw std::invalid_argument("foxml::events: merged_source got an empty source");
    auto state = std::make_unique<child_state>();
    state->description = input->describe();
    state->input = std::move(input);
    children_.push_back(std::move(state));
  }
  running_ = children_.size();
  try {
    for (std::size_t i = 0; i < children_.size(); ++i) {
      children_[i]->thread = std::thread([this, i] { run_child(i); });
    }
  } catch (...) {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    room_.notify_all();
    for (auto& c : children_) {
      c->input->wake();
      if (c->thread.joinable()) c->thread.join();
    }
    ::close(wake_fd_);
    throw;
  }
}

merged_source::~merged_source() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  room_.notify_all();
  for (auto& c : children_) c->input->wake();
  for (auto& c : children_) {
    if (c->thread.joinable()) c->thread.join();
  }
  children_.clear();  // closes the children (a socket server removes its file) before the eventfd
  ::close(wake_fd_);
}

void merged_source::run_child(std::size_t index) noexcept {
  child_state& c = *children_[index];
  std::string failure;
  try {
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
      }
      const bool more = c.input->poll(child_wait, [&](const raw_line& line) {
        std::unique_lock lock(mutex_);
        const auto full = [&] {
          return queue_.size() >= options_.max_lines ||
                 (!queue_.empty() && queued_bytes_ + line.text.size() > options_.max_bytes);
        };
        if (full() && !stopping_) {
          ++waits_;
          room_.wait(lock, [&] { return stopping_ || !full(); });
        }
        if (stopping_) return;  // closing: the reader takes nothing more
        queue_.push_back({std::string(line.text), index,
                          line_position{std::string_view(), line.position.line, line.position.offset},
                          line.oversized});
        queued_bytes_ += line.text.size();
        lock.unlock();
        signal_fd(wake_fd_);
      });
      std::string stats = c.input->stats_json();
      std::lock_guard lock(mutex_);
      c.stats = std::move(stats);
      if (!more) break;
    }
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  {
    std::lock_guard lock(mutex_);
    c.finished = true;
    c.error = std::move(failure);
    --running_;
  }
  signal_fd(wake_fd_);
}

bool merged_source::poll(std::chrono::milliseconds timeout, const line_handler& on_line) {
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty() && running_ > 0) {
      // Fall through to wait below.
    } else if (queue_.empty()) {
      return false;
    }
  }
  bool waited = false;
  for (;;) {
    std::deque<queued_line> taken;
    bool done = false;
    {
      std::lock_guard lock(mutex_);
      taken.swap(queue_);
      queued_bytes_ = 0;
      done = running_ == 0;
    }
    if (!taken.empty()) {
      room_.notify_all();
      for (const auto& q : taken) {
        raw_line line{q.text, q.position, q.oversized};
        line.position.origin = children_[q.child]->description;
        on_line(line);
      }
      return true;
    }
    if (done) return false;
    if (waited) return true;
    pollfd pfd{wake_fd_, POLLIN, 0};
    const int ms = timeout.count() < 0 ? -1 : static_cast<int>(std::min<long long>(timeout.count(), 1 << 30));
    const int n = ::poll(&pfd, 1, ms);
    if (n > 0) drain_fd(wake_fd_);
    waited = true;
  }
}

void merged_source::wake() noexcept { signal_fd(wake_fd_); }

std::string merged_source::describe() const {
  std::string out = "merged:";
  for (std::size_t i = 0; i < children_.size(); ++i) {
    if (i > 0) out += ',';
    out += children_[i]->description;
  }
  return out;
}

std::string merged_source::stats_json() const {
  std::lock_guard lock(mutex_);
  nlohmann::json children = nlohmann::json::array();
  for (const auto& c : children_) {
    nlohmann::json one = {{"source", c->description},
                          {"stats", nlohmann::json::parse(c->stats, nullptr, false)},
                          {"finished", c->finished}};
    if (!c->error.empty()) one["error"] = c->error;
    children.push_back(std::move(one));
  }
  return nlohmann::json{{"queued", queue_.size()}, {"waits", waits_}, {"children", std::move(children)}}.dump();
}

}  // namespace foxml::events::reader

#include "foxml/events/reader/live_reader.hpp"

#include <nlohmann/json.hpp>

#include <future>
#include <stdexcept>

#include "foxml/events/reader/merged_source.hpp"
#include "foxml/events/reader/socket_source.hpp"

#include "stats_json.hpp"

namespace foxml::events::reader {
namespace {

using namespace std::chrono_literals;

// How long one pump turn may wait in the source before looking at stop requests again (stop()
// wakes it at once; this only bounds a wake-up lost to a source that cannot be woken).
constexpr std::chrono::milliseconds pump_wait = 250ms;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

live_reader_options aligned(live_reader_options options) {
  // One line cap: a line the source hands out whole is never refused for its size by the decoder.
  options.stream.limits.max_line_bytes = options.source.max_line_bytes;
  options.source.types = options.filter.types;
  options.source.runs = options.filter.runs;
  return options;
}

}  // namespace

live_reader::live_reader(std::string_view uri, live_reader_options options)
    : live_reader(parse_source_uri(uri), std::move(options)) {}

live_reader::live_reader(const source_uri& parsed, live_reader_options options)
    : live_reader(nullptr, false, std::move(options)) {
  source_ = make_source(parsed, options_.source);
  live_ = is_live(parsed, options_.source);
  description_ = source_->describe();
  source_stats_ = source_->stats_json();  // its counters (at zero) before the first poll: every key present
  waker_ = source_.get();
}

live_reader::live_reader(std::unique_ptr<source> input, bool live, live_reader_options options)
    : source_(std::move(input)),
      live_(live),
      options_(aligned(std::move(options))),
      stream_(options_.stream),
      tracker_(options_.tracker),
      ring_(std::make_shared<ring_buffer>(options_.ring_size)) {
  if (options_.ring_size == 0) throw std::invalid_argument("foxml::events: live_reader ring_size must be at least 1");
  if (source_) {
    description_ = source_->describe();
    source_stats_ = source_->stats_json();  // no thread polls it yet
  }
  waker_ = source_.get();
}

live_reader::~live_reader() { close(); }

// ---- driving

bool live_reader::drive(std::chrono::milliseconds timeout, const item_handler& on_item) {
  if (finished_ || !source_) return false;
  const bool more = source_->poll(timeout, [&](const raw_line& line) { accept(line, on_item); });
  std::string source_stats = source_->stats_json();
  std::lock_guard lock(state_mutex_);
  source_stats_ = std::move(source_stats);
  if (!more) {
    stream_.flush_gaps();  // a finite stream: whatever is still outstanding is missing
    finished_ = true;
    ring_->close();
  } else if (live_) {
    tracker_.check_stale(now_us());
  }
  return more;
}

void live_reader::accept(const raw_line& line, const item_handler& on_item) {
  live_item item;
  {
    std::lock_guard lock(state_mutex_);
    const std::uint64_t malformed_before = stream_.stats().malformed;
    std::optional<stream_event> e = stream_.push(line);
    if (!e) {
      if (!options_.malformed_items || background_ || stream_.stats().malformed == malformed_before) return;
      item.position = ring_->end();
      item.malformed = stream_.malformed().empty()
                           ? malformed_line{std::string(line.position.origin), line.position.line, line.position.offset,
                                            "malformed line"}
                           : stream_.malformed().back();
    } else {
      if (!options_.filter.matches(e->value)) return;
      tracker_.apply(e->value, e->line);
      item.event = std::make_shared<const stream_event>(std::move(*e));
      item.position = ring_->push(item.event);
    }
  }
  if (on_item) on_item(item);
  if (item.event) {
    std::lock_guard lock(subscribers_mutex_);
    for (const auto& [id, fn] : subscribers_) fn(item.event, item.position);
  }
}

bool live_reader::poll(std::chrono::milliseconds timeout, const item_handler& on_item) {
  if (background_) throw std::logic_error("foxml::events: live_reader::poll() is for a reader without start()");
  std::lock_guard drive_lock(drive_mutex_);
  if (stop_) return false;
  return drive(timeout, on_item);
}

std::vector<live_item> live_reader::poll(std::chrono::milliseconds timeout) {
  poll(timeout, [this](const live_item& item) {
    std::lock_guard lock(state_mutex_);
    pending_.push_back(item);
  });
  std::lock_guard lock(state_mutex_);
  // A malformed item comes alone, so a consumer that raises at it has lost nothing after it.
  std::vector<live_item> out;
  while (!pending_.empty()) {
    if (pending_.front().malformed && !out.empty()) break;
    out.push_back(std::move(pending_.front()));
    pending_.pop_front();
    if (out.back().malformed) break;
  }
  return out;
}

std::optional<live_item> live_reader::take() {
  std::lock_guard lock(state_mutex_);
  if (stop_) return std::nullopt;
  if (background_) {
    ring_read r = ring_->read_since(cursor_, 1);
    missed_ += r.missed;
    if (r.events.empty()) return std::nullopt;
    cursor_ = r.next;
    return live_item{std::move(r.events.front()), r.next - 1, std::nullopt};
  }
  if (pending_.empty()) return std::nullopt;
  live_item item = std::move(pending_.front());
  pending_.pop_front();
  return item;
}

std::optional<live_item> live_reader::next(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto item = take()) return item;
    if (stop_) return std::nullopt;
    if (finished_) return take();  // nothing arrives after finishing: only what came before it
    const auto now = std::chrono::steady_clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (background_) {
      if (now >= deadline) return std::nullopt;
      std::uint64_t cursor;
      {
        std::lock_guard lock(state_mutex_);
        cursor = cursor_;
      }
      ring_->wait_since(cursor, left + 1ms, 1);  // only waits: the next turn takes and counts
    } else {
      // Reads at least once, so next(0ms) takes what is there now.
      std::lock_guard drive_lock(drive_mutex_);
      if (!stop_ && !background_) {
        drive(std::max(left, 0ms), [this](const live_item& item) {
          std::lock_guard lock(state_mutex_);
          pending_.push_back(item);
        });
      }
      std::lock_guard lock(state_mutex_);
      if (pending_.empty() && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    }
  }
}

// ---- push mode

void live_reader::start() {
  if (background_) return;
  std::lock_guard drive_lock(drive_mutex_);  // a pull in another thread has returned
  if (!source_) throw std::logic_error("foxml::events: the live_reader is closed");
  {
    std::lock_guard lock(state_mutex_);
    cursor_ = ring_->end();
    for (const auto& item : pending_) {  // the first event not yet taken
      if (item.event) {
        cursor_ = item.position;
        break;
      }
    }
    pending_.clear();
    background_ = true;
  }
  pump_ = std::thread([this] { pump(); });
}

void live_reader::pump() noexcept {
  try {
    while (!stop_ && !finished_) {
      std::lock_guard drive_lock(drive_mutex_);
      drive(pump_wait, nullptr);
    }
  } catch (const std::exception& e) {
    finish(e.what());
  } catch (...) {
    finish("unknown exception");
  }
}

void live_reader::finish(std::optional<std::string> failure) {
  std::lock_guard lock(state_mutex_);
  if (failure && !error_) error_ = std::move(failure);
  finished_ = true;
  ring_->close();
}

std::uint64_t live_reader::subscribe(subscriber fn) {
  std::lock_guard lock(subscribers_mutex_);
  subscribers_.emplace_back(next_subscriber_, std::move(fn));
  return next_subscriber_++;
}

void live_reader::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(subscribers_mutex_);
  for (auto it = subscribers_.begin(); it != subscribers_.end(); ++it) {
    if (it->first == id) {
      subscribers_.erase(it);
      return;
    }
  }
}

void live_reader::stop() noexcept {
  stop_ = true;
  if (source* s = waker_.load()) s->wake();
}

void live_reader::close() noexcept {
  stop();
  if (pump_.joinable()) pump_.join();
  std::lock_guard drive_lock(drive_mutex_);  // a pull in another thread has returned
  waker_ = nullptr;
  finish(std::nullopt);
  source_.reset();
}

bool live_reader::ended() const {
  if (stop_) return true;
  if (!finished_) return false;
  std::lock_guard lock(state_mutex_);
  return background_ ? cursor_ >= ring_->end() : pending_.empty();
}

std::optional<std::string> live_reader::error() const {
  std::lock_guard lock(state_mutex_);
  return error_;
}

// ---- state

void live_reader::refresh_stale() const {
  if (live_) tracker_.check_stale(now_us());
}

event_stream_stats live_reader::stats() const {
  std::lock_guard lock(state_mutex_);
  return stream_.stats();
}

std::string live_reader::stats_json() const {
  std::lock_guard lock(state_mutex_);
  nlohmann::json out = stream_.stats();
  out["missed"] = missed_.load();
  out["source"] = nlohmann::json::parse(source_stats_);
  return out.dump();
}

std::vector<malformed_line> live_reader::malformed() const {
  std::lock_guard lock(state_mutex_);
  return {stream_.malformed().begin(), stream_.malformed().end()};
}

std::vector<seq_gap> live_reader::gaps() const {
  std::lock_guard lock(state_mutex_);
  return {stream_.gaps().begin(), stream_.gaps().end()};
}

void live_reader::flush_gaps() {
  std::lock_guard lock(state_mutex_);
  stream_.flush_gaps();
}

std::vector<run_state> live_reader::runs() const {
  std::lock_guard lock(state_mutex_);
  refresh_stale();
  return tracker_.runs();
}

std::optional<run_state> live_reader::run(std::string_view run_id) const {
  std::lock_guard lock(state_mutex_);
  refresh_stale();
  const run_state* run = tracker_.find(run_id);
  return run ? std::optional<run_state>(*run) : std::nullopt;
}

std::optional<run_state> live_reader::latest() const {
  std::lock_guard lock(state_mutex_);
  refresh_stale();
  const run_state* run = tracker_.latest();
  return run ? std::optional<run_state>(*run) : std::nullopt;
}

training_status_snapshot live_reader::training_status() const {
  std::lock_guard lock(state_mutex_);
  refresh_stale();
  return tracker_.training_status();
}

void live_reader::check_stale(std::int64_t now) {
  std::lock_guard lock(state_mutex_);
  tracker_.check_stale(now);
}

// ---- commands

command_result live_reader::send_command(const std::string& run_id, const std::string& name,
                                         const std::string& arg_json, std::chrono::milliseconds timeout) {
  command_request request{run_id, name, arg_json, "", ""};
  encode_command(request);  // refuses a bad command here, in the caller's thread
  if (const auto* merged = dynamic_cast<const merged_source*>(source_.get())) {
    // Each child is polled by its own thread (which serves a socket's relay): ask them in turn
    // until one knows the run.
    command_result result;
    for (std::size_t i = 0; i < merged->size(); ++i) {
      const source& child = merged->child(i);
      const std::string origin = child.describe();
      if (origin.rfind("file://", 0) == 0) {
        result = send_command_control(control_directory_for(origin.substr(7)), request, timeout);
      } else if (const auto* listener = dynamic_cast<const socket_source*>(&child)) {
        result = send_command_relay(listener->path(), request, timeout);
      } else {
        result = send_command_zmq(origin, "", request, timeout);
      }
      if (!result.unknown_run) return result;
    }
    return result;
  }
  const std::string origin = description_;
  if (origin.rfind("file://", 0) == 0) {
    return send_command_control(control_directory_for(origin.substr(7)), std::move(request), timeout);
  }
  const auto* listener = dynamic_cast<const socket_source*>(source_.get());
  if (listener == nullptr) return send_command_zmq(origin, "", std::move(request), timeout);
  // The relay is served by whoever reads the source: the pump after start(), else this wait.
  auto reply = std::async(std::launch::async, [path = listener->path(), request, timeout] {
    return send_command_relay(path, request, timeout);
  });
  const auto queue = [this](const live_item& item) {
    std::lock_guard lock(state_mutex_);
    pending_.push_back(item);
  };
  while (reply.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    std::unique_lock drive_lock(drive_mutex_, std::try_to_lock);
    if (!background_ && drive_lock.owns_lock() && !stop_ && !finished_) {
      drive(std::chrono::milliseconds(20), queue);
    } else {
      drive_lock = {};
      reply.wait_for(std::chrono::milliseconds(20));
    }
  }
  return reply.get();
}

}  // namespace foxml::events::reader

#pragma once
/// A ZeroMQ SUB source (target `foxml::events_reader_zmq`, the only part of the reader that
/// needs libzmq).

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>

#include "foxml/events/sink_uri.hpp"  // curve_settings
#include <string>

#include "foxml/events/event.hpp"
#include "foxml/events/reader/defaults.hpp"
#include "foxml/events/reader/source.hpp"

namespace zmq {
class context_t;
}  // namespace zmq

namespace foxml::events::reader {

/// Settings of a zmq_source. The publisher sends two frames: the topic
/// `<event_type>\x1f<run_id>\x1f` and the JSON line without its `\n`. Filters become
/// subscriptions, so the publisher drops what this subscriber does not want.
struct zmq_source_options {
  std::set<event_type> types;  ///< empty: every type
  std::set<std::string> runs;  ///< empty: every run
  std::size_t max_line_bytes = defaults::max_line_bytes;
  int receive_hwm = 100000;    ///< messages queued in libzmq before it drops (SUB sockets drop)
  /// CURVE client settings (zmq_curve.hpp): the publisher's public key and this side's key file,
  /// both or neither.
  curve_settings curve;
};

/// Counters of a zmq_source.
struct zmq_source_stats {
  std::uint64_t messages = 0;
  std::uint64_t bad_frames = 0;  ///< messages that were not topic + one line
};

/// Connects a SUB socket to `endpoint` (`ipc:///path`, `tcp://host:port`, `inproc://...` with
/// the context given). Never finishes by itself.
class zmq_source final : public source {
 public:
  /// Connects to `endpoint`. Throws zmq::error_t (a std::exception) on a bad endpoint. `context`
  /// (for inproc://, which needs the publisher's context) must outlive the source; nullptr gives
  /// the source a private context.
  explicit zmq_source(const std::string& endpoint, zmq_source_options options = {},
                      zmq::context_t* context = nullptr);
  ~zmq_source() override;
  zmq_source(const zmq_source&) = delete;
  zmq_source& operator=(const zmq_source&) = delete;

  bool poll(std::chrono::milliseconds timeout, const line_handler& on_line) override;
  void wake() noexcept override;
  std::string describe() const override;
  std::string stats_json() const override;

  zmq_source_stats stats() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Lets make_source() open ZeroMQ URIs (zmq+tcp://, zmq+ipc://, tcp://, ipc://) with this
/// component, as enable_zmq_sink_uris() does for sinks. Safe to call more than once.
void enable_zmq_source_uris();

}  // namespace foxml::events::reader

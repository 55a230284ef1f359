#pragma once
/// The fallback chain: events go to the first healthy sink of an ordered list.

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "foxml/events/composite_sink.hpp"

namespace foxml::events {

/// Settings of a fallback_sink.
struct fallback_options {
  /// After a sink refuses lines, it is skipped for this long, doubling up to the maximum while it
  /// keeps refusing; a sink that says it is unhealthy is skipped until it says otherwise.
  std::chrono::milliseconds retry_min{10};
  std::chrono::milliseconds retry_max{1000};
};

/// Sends each line to the first sink of the chain that is healthy and takes it: when a sink
/// refuses part of a batch, the rest goes to the next one at once (no gap), and the refusing sink
/// is retried with backoff and takes over again when it accepts. Lines a sink hands back through
/// reclaim() (a socket that broke before its listener acknowledged them) go to the sinks after it.
/// The last sink is always tried, healthy or not: it is the last resort.
///
/// When the sink taking new lines changes, the chain says so in the stream (take_notice(); the
/// emitter writes it as a `log` event, level "warning", through the chain, so it lands in the
/// sink now serving): "foxml-events: unix:///s fell behind; events from seq N continue in
/// file:///f" goes to the file, and "foxml-events: unix:///s took over again at seq M; events
/// since seq N went to file:///f" to the socket, so a reader of either knows where the rest is.
class fallback_sink final : public composite_sink {
 public:
  /// Takes the chain, first choice first. Throws std::invalid_argument when it is empty or holds
  /// a null sink.
  explicit fallback_sink(std::vector<std::unique_ptr<sink>> chain, fallback_options options = {});

  std::size_t write(const line_batch& batch) noexcept override;
  void close() noexcept override;
  std::size_t reclaim(line_batch& out) noexcept override;
  /// The children's notices first, then the chain's own.
  bool take_notice(std::string& message) noexcept override;

 private:
  struct link {
    bool failing = false;
    std::chrono::steady_clock::time_point retry_at{};
    std::chrono::milliseconds backoff{0};
  };

  // Writes `batch` to the chain from link `first` on; returns how many leading lines were taken.
  std::size_t route(const line_batch& batch, std::size_t first, std::chrono::steady_clock::time_point now) noexcept;
  bool usable(std::size_t i, std::chrono::steady_clock::time_point now) noexcept;
  void collect_reclaimed(std::size_t i) noexcept;  // re-routes what link i lost; the rest to orphans_
  void note_serving(std::size_t i, std::uint64_t seq) noexcept;
  std::unique_ptr<sink> remake(std::vector<std::unique_ptr<sink>> chain) const override;

  std::vector<link> links_;
  fallback_options options_;
  line_batch rest_;       // the unplaced tail of a batch, for the next link
  line_batch reclaimed_;  // what one link handed back
  line_batch orphans_;    // reclaimed lines no later link took, for our own reclaim()
  std::size_t orphans_untold_ = 0;  // of those, lines memory ran out to copy (counted, no text)
  // The link that took the latest new lines, and the first seq it took since it took over.
  std::size_t serving_ = static_cast<std::size_t>(-1);
  std::uint64_t serving_since_ = 0;
  std::deque<std::string> notices_;  // bounded: a flapping chain cannot grow it without limit
};

}  // namespace foxml::events

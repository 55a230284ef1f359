#pragma once
/// The tee: every event to every sink (the usual pairing: a live socket and a file record).

#include <memory>
#include <string>
#include <vector>

#include "foxml/events/sink.hpp"

namespace foxml::events {

/// Writes every batch to every sink. A line counts as delivered when at least one sink took it,
/// so write() returns the most lines any sink accepted; what one branch refuses or loses is not
/// reported while another holds it. To re-route a branch's losses, make it a fallback_sink.
class tee_sink final : public sink {
 public:
  /// Throws std::invalid_argument when `branches` is empty or holds a null sink.
  explicit tee_sink(std::vector<std::unique_ptr<sink>> branches);

  std::size_t size() const noexcept { return branches_.size(); }
  sink& at(std::size_t i) const noexcept { return *branches_[i]; }

  std::size_t write(const line_batch& batch) noexcept override;
  bool flush() noexcept override;
  void close() noexcept override;
  bool healthy() noexcept override;
  std::size_t reclaim(line_batch& out) noexcept override;
  void poll(std::chrono::steady_clock::time_point now) noexcept override;
  std::unique_ptr<sink> reopen_after_fork() const override;
  std::string describe() const override;

 private:
  std::vector<std::unique_ptr<sink>> branches_;
  line_batch discarded_;
};

}  // namespace foxml::events

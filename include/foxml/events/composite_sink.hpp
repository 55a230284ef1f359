#pragma once
/// The base of sinks made of other sinks (fallback_sink, tee_sink): it owns the children and
/// forwards the hooks every composite forwards the same way, so a new composite writes only
/// what makes it different (how lines are routed, and what happens at close).

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "foxml/events/sink.hpp"

namespace foxml::events {

class composite_sink : public sink {
 public:
  std::size_t size() const noexcept { return children_.size(); }
  /// Returns child `i` (for inspection; it stays owned by the composite).
  sink& at(std::size_t i) const noexcept { return *children_[i]; }

  /// Flushes every child.
  void flush() noexcept override;
  /// True when any child is healthy (a write can land somewhere).
  bool healthy() noexcept override;
  /// Polls every child.
  void poll(std::chrono::steady_clock::time_point now) noexcept override;
  /// A consumer of any child counts.
  void note_consumer(std::chrono::steady_clock::time_point now,
                     std::chrono::steady_clock::time_point& last_seen) noexcept override;
  /// Passes on the first notice any child has.
  bool take_notice(std::string& message) noexcept override;
  /// The same composite over the children that can be reopened; nullptr when none can.
  std::unique_ptr<sink> reopen_after_fork() const override;
  /// Attaches every child, in order (the first file sink names the control directory).
  void attach_control(control_attachment& attachment) noexcept override;
  /// The children's descriptions, joined by the composite's separator.
  std::string describe() const override;

 protected:
  /// Takes the children in order. Throws std::invalid_argument, naming `kind`, when there are
  /// none or one is null.
  composite_sink(std::vector<std::unique_ptr<sink>> children, std::string_view kind, std::string_view separator);

  /// Builds a composite of the same kind and settings over `children` (for reopen_after_fork).
  virtual std::unique_ptr<sink> remake(std::vector<std::unique_ptr<sink>> children) const = 0;

 private:
  std::vector<std::unique_ptr<sink>> children_;
  std::string_view separator_;
};

}  // namespace foxml::events

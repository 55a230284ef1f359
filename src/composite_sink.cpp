#include "foxml/events/composite_sink.hpp"

#include "foxml/events/control.hpp"

#include <stdexcept>

namespace foxml::events {

composite_sink::composite_sink(std::vector<std::unique_ptr<sink>> children, std::string_view kind,
                               std::string_view separator)
    : children_(std::move(children)), separator_(separator) {
  if (children_.empty()) throw std::invalid_argument("foxml::events: a " + std::string(kind) + " needs at least one sink");
  for (const auto& child : children_) {
    if (!child) throw std::invalid_argument("foxml::events: a " + std::string(kind) + " must not hold a null sink");
  }
}

void composite_sink::flush() noexcept {
  for (auto& child : children_) child->flush();
}

bool composite_sink::healthy() noexcept {
  for (auto& child : children_) {
    if (child->healthy()) return true;
  }
  return false;
}

void composite_sink::poll(std::chrono::steady_clock::time_point now) noexcept {
  for (auto& child : children_) child->poll(now);
}

void composite_sink::note_consumer(std::chrono::steady_clock::time_point now,
                                   std::chrono::steady_clock::time_point& last_seen) noexcept {
  for (auto& child : children_) child->note_consumer(now, last_seen);
}

bool composite_sink::take_notice(std::string& message) noexcept {
  for (auto& child : children_) {
    if (child->take_notice(message)) return true;
  }
  return false;
}

std::unique_ptr<sink> composite_sink::reopen_after_fork() const {
  std::vector<std::unique_ptr<sink>> reopened;
  for (const auto& child : children_) {
    if (auto copy = child->reopen_after_fork()) reopened.push_back(std::move(copy));
  }
  if (reopened.empty()) return nullptr;
  return remake(std::move(reopened));
}

void composite_sink::attach_control(control_attachment& attachment) noexcept {
  for (const auto& child : children_) child->attach_control(attachment);
}

std::string composite_sink::describe() const {
  std::string text;
  for (const auto& child : children_) {
    if (!text.empty()) text += separator_;
    text += child->describe();
  }
  return text;
}

}  // namespace foxml::events

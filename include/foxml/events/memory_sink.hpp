#pragma once
/// An in-memory sink for tests and for embedding: keeps every line it is given.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "foxml/events/sink.hpp"

namespace foxml::events {

/// Lines a memory_sink received; shared so a test can read them after the sink moved into an emitter.
class memory_store {
 public:
  /// Returns a copy of every line received so far, without the trailing `\n`.
  std::vector<std::string> lines() const;
  std::size_t size() const;
  /// Number of times the worker called flush().
  std::size_t flush_count() const;

 private:
  friend class memory_sink;
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
  std::size_t flushes_ = 0;
};

/// Keeps every line in a memory_store; accepts everything.
class memory_sink final : public sink {
 public:
  memory_sink() : store_(std::make_shared<memory_store>()) {}
  explicit memory_sink(std::shared_ptr<memory_store> store) : store_(std::move(store)) {}

  const std::shared_ptr<memory_store>& store() const noexcept { return store_; }

  std::size_t write(const line_batch& batch) noexcept override;
  void flush() noexcept override;
  std::unique_ptr<sink> reopen_after_fork() const override;
  std::string describe() const override { return "memory://"; }

 private:
  std::shared_ptr<memory_store> store_;
};

}  // namespace foxml::events

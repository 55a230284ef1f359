#pragma once
// A bounded multi-producer, single-consumer ring of fixed-size slots. Each slot carries a turn
// counter (after D. Vyukov's bounded MPMC queue): a producer claims a position with one CAS and
// publishes with one release store; the consumer never takes a lock. Full is a return value.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace foxml::events::detail {

inline constexpr std::size_t cache_line = 64;

template <class T>
class bounded_queue {
 public:
  // `capacity` must be a power of two (the emitter rounds its option up).
  explicit bounded_queue(std::size_t capacity)
      : mask_(capacity - 1), cells_(new cell[capacity]) {
    for (std::size_t i = 0; i < capacity; ++i) cells_[i].turn.store(i, std::memory_order_relaxed);
  }
  bounded_queue(const bounded_queue&) = delete;
  bounded_queue& operator=(const bounded_queue&) = delete;

  std::size_t capacity() const noexcept { return mask_ + 1; }

  // Claims a slot and calls `fill(T&)` on it; returns false, without calling `fill`, when full.
  // `position` receives the claimed queue position.
  template <class Fill>
  bool try_push(Fill&& fill, std::uint64_t& position) noexcept {
    std::uint64_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells_[pos & mask_];
      const std::uint64_t turn = c.turn.load(std::memory_order_acquire);
      const auto lag = static_cast<std::int64_t>(turn - pos);
      if (lag == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          fill(c.value);
          c.turn.store(pos + 1, std::memory_order_release);
          prefetch(cells_[(pos + 1) & mask_]);
          position = pos;
          return true;
        }
      } else if (lag < 0) {
        return false;  // the slot still holds an item from one lap ago: full
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  // Consumer only: the oldest published item, or nullptr when none is ready.
  T* front() noexcept {
    cell& c = cells_[tail_ & mask_];
    if (c.turn.load(std::memory_order_acquire) != tail_ + 1) return nullptr;
    return &c.value;
  }

  // Consumer only: releases the item returned by front().
  void pop() noexcept {
    cell& c = cells_[tail_ & mask_];
    c.turn.store(tail_ + mask_ + 1, std::memory_order_release);
    ++tail_;
    consumed_.store(tail_, std::memory_order_release);
  }

  // Positions claimed so far; everything pushed before a call is below the returned value.
  std::uint64_t claimed() const noexcept { return head_.load(std::memory_order_acquire); }
  // Positions the consumer has released; readable from any thread.
  std::uint64_t consumed() const noexcept { return consumed_.load(std::memory_order_acquire); }

 private:
  struct alignas(cache_line) cell {
    std::atomic<std::uint64_t> turn;
    T value;
  };

  // Starts fetching the next slot while the caller goes back to its own work (a training step):
  // its lines were last written by the consumer, on another core, one lap ago, so the next push
  // would otherwise wait on those misses. Only a hint: another producer may take that slot.
  static void prefetch(const cell& next) noexcept {
    const char* at = reinterpret_cast<const char*>(&next);
    for (std::size_t off = 0; off < sizeof(cell); off += cache_line) __builtin_prefetch(at + off, 1, 3);
  }

  const std::size_t mask_;
  std::unique_ptr<cell[]> cells_;
  alignas(cache_line) std::atomic<std::uint64_t> head_{0};
  alignas(cache_line) std::uint64_t tail_ = 0;
  std::atomic<std::uint64_t> consumed_{0};
};

}  // namespace foxml::events::detail

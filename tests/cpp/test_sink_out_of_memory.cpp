// Sink methods are noexcept: an allocation failure inside one must be counted and dropped, never
// escape (std::terminate would end the training process). This binary replaces the global
// operator new so that a test can make allocations on its own thread fail on demand.
#include <doctest/doctest.h>

#include <cstdlib>
#include <new>

#include "foxml/events/fallback_sink.hpp"
#include "foxml/events/memory_sink.hpp"
#include "foxml/events/tee_sink.hpp"
#include "foxml/events/unix_socket_sink.hpp"
#include "support/unix_listener.hpp"

namespace {

thread_local bool allocations_fail = false;

void* allocate(std::size_t size) {
  if (allocations_fail) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

// Allocations on this thread throw std::bad_alloc while one of these lives. Only sink calls go
// inside: doctest's own checks allocate.
struct out_of_memory {
  out_of_memory() { allocations_fail = true; }
  ~out_of_memory() { allocations_fail = false; }
  out_of_memory(const out_of_memory&) = delete;
  out_of_memory& operator=(const out_of_memory&) = delete;
};

}  // namespace

void* operator new(std::size_t size) { return allocate(size); }
void* operator new[](std::size_t size) { return allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace foxml::events;
using namespace foxml::events::testing;

namespace {

// Takes at most `room` lines in all, then refuses.
class narrow_sink final : public sink {
 public:
  explicit narrow_sink(std::size_t room) : room_(room) {}
  std::size_t write(const line_batch& batch) noexcept override {
    const std::size_t n = std::min(room_, batch.size());
    room_ -= n;
    return n;
  }
  std::string describe() const override { return "narrow://"; }

 private:
  std::size_t room_;
};

}  // namespace

TEST_CASE("the allocation failure switch works (else the tests below prove nothing)") {
  bool threw = false;
  {
    out_of_memory oom;
    try {
      std::string s(1000, 'x');
    } catch (const std::bad_alloc&) {
      threw = true;
    }
  }
  CHECK(threw);
}

TEST_CASE("a fallback chain out of memory to copy the rest of a batch refuses the rest") {
  std::vector<std::unique_ptr<sink>> chain;
  chain.push_back(std::make_unique<narrow_sink>(2));
  auto store = std::make_shared<memory_store>();
  chain.push_back(std::make_unique<memory_sink>(store));
  fallback_sink fallback(std::move(chain));
  const line_batch batch = numbered_lines(0, 5);
  std::size_t taken = 0;
  {
    out_of_memory oom;
    taken = fallback.write(batch);
  }
  CHECK(taken == 2);  // the rest is refused: the worker retries it, then counts it
  line_batch rest = numbered_lines(2, 3);
  CHECK(fallback.write(rest) == 3);
  CHECK(store->size() == 3);
}

TEST_CASE("a tee out of memory to hand back lost lines still counts them") {
  std::vector<std::unique_ptr<sink>> branches;
  branches.push_back(std::make_unique<memory_sink>());
  branches.push_back(std::make_unique<narrow_sink>(0));
  tee_options options;
  options.backlog_bytes = 1;  // the refusing branch loses every line at once
  tee_sink tee(std::move(branches), options);
  CHECK(tee.write(numbered_lines(0, 3)) == 3);
  CHECK(tee.dropped(1) == 3);
  line_batch out;
  std::size_t lost = 0;
  {
    out_of_memory oom;
    lost = tee.reclaim(out);
  }
  CHECK(lost == 3);  // counted, though memory allowed none of their text to be handed back
  CHECK(out.size() <= lost);
  CHECK(tee.reclaim(out) == 0);  // counted once
}

TEST_CASE("a Unix socket sink out of memory when its connection breaks counts what it held") {
  temp_dir dir;
  auto listener = std::make_unique<unix_listener>(dir / "a.sock", unix_listener::mode::no_read);
  unix_socket_sink s(fast_options(dir / "a.sock"));
  REQUIRE(unix_listener::wait(
      [&] {
        s.poll(std::chrono::steady_clock::now());
        return s.connected() && listener->connected();
      },
      10));
  CHECK(s.write(numbered_lines(0, 5)) == 5);
  CHECK(s.unacked_lines() == 5);
  listener->kill();
  // The sink sees the break in poll(), where it keeps the held lines for reclaim(): that copy
  // is what fails here.
  REQUIRE(unix_listener::wait(
      [&] {
        bool connected = true;
        {
          out_of_memory oom;
          s.poll(std::chrono::steady_clock::now());
          connected = s.connected();
        }
        return !connected;
      },
      10));
  line_batch back;
  CHECK(s.reclaim(back) == 5);
  CHECK(back.empty());
  CHECK(s.reclaim(back) == 0);
}

TEST_CASE("a Unix socket sink out of memory while writing refuses instead of failing") {
  temp_dir dir;
  unix_listener listener(dir / "b.sock", unix_listener::mode::no_ack);
  unix_socket_sink s(fast_options(dir / "b.sock"));
  REQUIRE(unix_listener::wait(
      [&] {
        s.poll(std::chrono::steady_clock::now());
        return s.connected() && listener.connected();
      },
      10));
  const line_batch batch = numbered_lines(0, 4);
  std::size_t taken = 4;
  {
    out_of_memory oom;
    taken = s.write(batch);
  }
  CHECK(taken == 0);            // nothing could be kept track of: refused, for the worker to retry
  CHECK_FALSE(s.connected());   // bytes it sent but cannot account for: the connection is ended
  line_batch back;
  CHECK(s.reclaim(back) == 0);
  CHECK(unix_listener::wait(
      [&] {
        s.poll(std::chrono::steady_clock::now());
        return s.connected();
      },
      10));
  CHECK(s.write(batch) == 4);
}

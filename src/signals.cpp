#include "foxml/events/signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "foxml/events/detail/live_emitters.hpp"
#include "foxml/events/emitter.hpp"

namespace foxml::events {
namespace detail {

struct signal_visit {
  static void end(training_event_emitter* e, std::string_view status, const char* fatal,
                  std::chrono::steady_clock::time_point deadline) noexcept {
    e->end_by_signal(status, fatal, deadline);
  }
};

}  // namespace detail

namespace {

using clock = std::chrono::steady_clock;

struct hooked_signal {
  int number;
  const char* name;
  const char* status;
  bool fatal;
};

constexpr hooked_signal hooked_signals[] = {
    {SIGTERM, "SIGTERM", "killed", false},   {SIGHUP, "SIGHUP", "killed", false},
    {SIGQUIT, "SIGQUIT", "killed", false},   {SIGINT, "SIGINT", "cancelled", false},
    {SIGSEGV, "SIGSEGV", "failed", true},    {SIGBUS, "SIGBUS", "failed", true},
    {SIGFPE, "SIGFPE", "failed", true},      {SIGILL, "SIGILL", "failed", true},
    {SIGABRT, "SIGABRT", "failed", true},
};

const hooked_signal* find_signal(int number) noexcept {
  for (const hooked_signal& s : hooked_signals) {
    if (s.number == number) return &s;
  }
  return nullptr;
}

// What the handler reads. Written only with every hooked signal blocked in the writing thread and
// before our handler is installed for that signal, so a handler never sees a half-written slot.
struct slot {
  struct sigaction previous {};
  std::atomic<bool> ours{false};
  std::atomic<bool> fatal_taken{false};
};
slot slots[NSIG];

std::atomic<bool> installed{false};
std::atomic<long> deadline_ms{1000};
std::atomic<pid_t> watcher_pid{0};
std::atomic<int> request_fd{-1};   // the handler writes signal numbers here
std::atomic<int> reply_fd{-1};     // the watcher writes a byte here after each round
std::atomic<std::uint64_t> requested{0};
std::atomic<std::uint64_t> completed{0};
std::mutex install_mutex;

// The emitters. The watcher gives up on this lock at the deadline (the signal may have interrupted a
// thread that holds it); it polls try_lock() rather than using a timed mutex, whose clocklock TSan
// does not see.
std::mutex registry_mutex;
std::vector<training_event_emitter*>& registry() {
  static auto* emitters = new std::vector<training_event_emitter*>();  // outlives static destructors
  return *emitters;
}

void fill_hooked_set(sigset_t& set) noexcept {
  sigemptyset(&set);
  for (const hooked_signal& s : hooked_signals) sigaddset(&set, s.number);
}

long long now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Async-signal-safe: wakes the watcher and waits (poll) until it finished a round that began after
// this request, or the deadline (plus a margin for the watcher's own wake-up) passed.
void request_and_wait(int number) noexcept {
  const int request = request_fd.load(std::memory_order_acquire);
  const int reply = reply_fd.load(std::memory_order_acquire);
  if (request < 0 || reply < 0 || watcher_pid.load(std::memory_order_acquire) != getpid()) return;
  const std::uint64_t ticket = requested.fetch_add(1, std::memory_order_acq_rel) + 1;
  const unsigned char byte = static_cast<unsigned char>(number);
  if (write(request, &byte, 1) != 1) return;
  const long long until = now_ms() + deadline_ms.load(std::memory_order_relaxed) + 200;
  while (completed.load(std::memory_order_acquire) < ticket) {
    const long long left = until - now_ms();
    if (left <= 0) return;
    // Short polls: another waiting handler may drain the byte meant to wake this one.
    pollfd p{reply, POLLIN, 0};
    poll(&p, 1, static_cast<int>(std::min<long long>(left, 10)));
    unsigned char sink[64];
    while (read(reply, sink, sizeof(sink)) > 0) {
    }
  }
}

void call_previous(int number, const struct sigaction& previous, siginfo_t* info, void* context) noexcept {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != nullptr) previous.sa_sigaction(number, info, context);
    return;
  }
  if (previous.sa_handler == SIG_IGN) return;
  if (previous.sa_handler == SIG_DFL) {
    // Our handler is in the way of the default action: take it out and raise again. The signal is
    // blocked while this handler runs, so it is delivered (and ends the process) when it returns.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(number, &dfl, nullptr);
    slots[number].ours.store(false, std::memory_order_relaxed);
    raise(number);
    return;
  }
  previous.sa_handler(number);
}

void on_signal(int number, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const hooked_signal* s = find_signal(number);
  slot& sl = slots[number];
  if (s != nullptr && s->fatal) {
    // One shot: the previous disposition goes back first, so a fault during the flush, a re-raise
    // or the faulting instruction run again meets it, never this handler.
    if (!sl.fatal_taken.exchange(true)) {
      sigaction(number, &sl.previous, nullptr);
      sl.ours.store(false, std::memory_order_relaxed);
      request_and_wait(number);
    }
    call_previous(number, sl.previous, info, context);
    errno = saved_errno;
    return;
  }
  if (s != nullptr) request_and_wait(number);
  call_previous(number, sl.previous, info, context);
  errno = saved_errno;
}

void end_all(const hooked_signal& s) noexcept {
  const auto deadline = clock::now() + std::chrono::milliseconds(deadline_ms.load(std::memory_order_relaxed));
  while (!registry_mutex.try_lock()) {
    if (clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::lock_guard<std::mutex> lock(registry_mutex, std::adopt_lock);
  for (training_event_emitter* e : registry()) {
    detail::signal_visit::end(e, s.status, s.fatal ? s.name : nullptr, deadline);
  }
}

void watch(int request, int reply) noexcept {
  for (;;) {
    unsigned char numbers[64];
    const ssize_t n = read(request, numbers, sizeof(numbers));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    // Requests made before this point are all served by this round.
    const std::uint64_t round = requested.load(std::memory_order_acquire);
    for (ssize_t i = 0; i < n; ++i) {
      if (const hooked_signal* s = find_signal(numbers[i])) end_all(*s);
    }
    completed.store(round, std::memory_order_release);
    const unsigned char byte = 1;
    [[maybe_unused]] const ssize_t w = write(reply, &byte, 1);
  }
}

void make_pipe(int fds[2], bool nonblocking_read) {
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "foxml::events: signal hook pipe");
  }
  fcntl(fds[1], F_SETFL, O_NONBLOCK);  // a handler never blocks on a full pipe
  if (nonblocking_read) fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

// Starts the watcher thread (with the hooked signals blocked in it) and publishes its pipes.
void start_watcher() {
  int requests[2];
  int replies[2];
  make_pipe(requests, false);
  try {
    make_pipe(replies, true);
  } catch (...) {
    close(requests[0]);
    close(requests[1]);
    throw;
  }
  {
    detail::signals_blocked blocked;
    std::thread(watch, requests[0], replies[1]).detach();
  }
  request_fd.store(requests[1], std::memory_order_release);
  reply_fd.store(replies[0], std::memory_order_release);
  watcher_pid.store(getpid(), std::memory_order_release);
}

// fork(): the registry's and the installer's locks are taken around it so the child gets them
// free. The parent's watcher thread does not exist in the child and its pipes are shared with the
// parent, so the child gets its own watcher, but only once one of its emitters starts (its first
// emit): a child that only exec()s, or never emits, has no run of its own to end.
std::atomic<bool> rearm_in_child{false};

void before_fork() noexcept {
  install_mutex.lock();
  registry_mutex.lock();
}
void after_fork_parent() noexcept {
  registry_mutex.unlock();
  install_mutex.unlock();
}
void after_fork_child() noexcept {
  registry_mutex.unlock();
  install_mutex.unlock();
  if (watcher_pid.load() == 0) return;
  watcher_pid.store(0);
  request_fd.store(-1);
  reply_fd.store(-1);
  rearm_in_child.store(true);
}

void install_fork_handlers() noexcept {
  static const int at_fork = pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  (void)at_fork;
}

}  // namespace

namespace detail {

void register_emitter(training_event_emitter* emitter) noexcept {
  // Also without the hook: a child must not inherit the registry's lock taken by another thread.
  install_fork_handlers();
  std::lock_guard<std::mutex> lock(registry_mutex);
  try {
    registry().push_back(emitter);
  } catch (...) {
    // Out of memory: this emitter just gets no terminal event on a signal.
  }
}

void unregister_emitter(training_event_emitter* emitter) noexcept {
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto& emitters = registry();
  emitters.erase(std::remove(emitters.begin(), emitters.end(), emitter), emitters.end());
}

static_assert(sizeof(sigset_t) <= sizeof(unsigned long) * 16, "signals_blocked::saved_ is too small");

signals_blocked::signals_blocked() noexcept {
  sigset_t hooked;
  fill_hooked_set(hooked);
  // Synchronous faults cannot be blocked meaningfully; only the asynchronous ones are.
  sigdelset(&hooked, SIGSEGV);
  sigdelset(&hooked, SIGBUS);
  sigdelset(&hooked, SIGFPE);
  sigdelset(&hooked, SIGILL);
  pthread_sigmask(SIG_BLOCK, &hooked, reinterpret_cast<sigset_t*>(saved_));
}

signals_blocked::~signals_blocked() { pthread_sigmask(SIG_SETMASK, reinterpret_cast<sigset_t*>(saved_), nullptr); }

void rearm_signal_hook_after_fork() noexcept {
  if (!rearm_in_child.exchange(false)) return;
  std::lock_guard<std::mutex> lock(install_mutex);
  try {
    start_watcher();
  } catch (...) {
    // Without a watcher this child's handlers chain at once; its events are flushed at exit only.
  }
}

}  // namespace detail

void install_signal_hook(const signal_hook_options& options) {
  if (options.deadline.count() < 0) {
    throw std::invalid_argument("foxml::events: signal_hook_options.deadline must not be negative");
  }
  std::lock_guard<std::mutex> lock(install_mutex);
  if (watcher_pid.load() != getpid()) {
    install_fork_handlers();
    start_watcher();
  }
  deadline_ms.store(options.deadline.count());
  for (const hooked_signal& s : hooked_signals) {
    if (s.fatal ? !options.fatal_signals : !options.termination_signals) continue;
    slot& sl = slots[s.number];
    struct sigaction current {};
    sigaction(s.number, nullptr, &current);
    const bool is_ours = (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_signal;
    if (is_ours) continue;
    // Ignored signals do not stop the process; there is no run to end.
    if (!(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) continue;
    sl.previous = current;
    sl.fatal_taken.store(false);
    struct sigaction ours {};
    ours.sa_sigaction = on_signal;
    // SA_RESTART like most handlers (Python's own handlers do not set it; a chained Python handler
    // still interrupts its sleeps through its wake-up fd). SA_ONSTACK: a stack overflow's SIGSEGV
    // can still run us when the application set up an alternate stack.
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | (current.sa_flags & SA_RESTART);
    fill_hooked_set(ours.sa_mask);
    sigaction(s.number, &ours, nullptr);
    sl.ours.store(true);
  }
  installed.store(true);
}

void remove_signal_hook() noexcept {
  std::lock_guard<std::mutex> lock(install_mutex);
  for (const hooked_signal& s : hooked_signals) {
    slot& sl = slots[s.number];
    if (!sl.ours.load()) continue;
    struct sigaction current {};
    sigaction(s.number, nullptr, &current);
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_signal) {
      sigaction(s.number, &sl.previous, nullptr);
    }
    sl.ours.store(false);
  }
  installed.store(false);
}

bool signal_hook_installed() noexcept { return installed.load(); }

}  // namespace foxml::events

// A trainer for the fault tests: emits numbered events to a file as fast as it can and records
// what the emitter accepted, with the time, in a shared file (faults/shared_record.hpp), so a test
// that signals or kills it knows what was promised.
//
//   trainer --file F --record R [--count N] [--payload BYTES] [--hook] [--no-hook-int]
//           [--user-handler before|after] [--crash segv|abort] [--run-id ID] [--rate PER_S]
//           [--hook-deadline-ms MS] [--fork-child]
//
// --fork-child: after run_start the trainer forks and the child does the emitting (a DataLoader
// worker, say); the parent waits and exits 128 + the signal that ended the child.
// --rate paces the loop (0, the default: as fast as it goes). A kill test paces it: a producer
// that outruns the disk has a backlog of accepted events, and that backlog, not the worker's
// flush interval, is then what a SIGKILL loses.
// --count 0 (the default) emits until stopped. With --user-handler, SIGTERM/SIGINT/SIGHUP/SIGQUIT
// get a handler that records the signal and makes the loop stop; the trainer then ends its run with
// `success` and exits 3, so a test can tell its handler ran and the process went on.

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "faults/shared_record.hpp"
#include "foxml/events/emitter.hpp"
#include "foxml/events/file_sink.hpp"
#include "foxml/events/signals.hpp"

namespace fe = foxml::events;

namespace {

volatile sig_atomic_t stop_requested = 0;
fe::test::shared_record* record = nullptr;

void user_handler(int number) {
  record->handler_signal.store(number);
  stop_requested = 1;
}

void install_user_handler() {
  struct sigaction action {};
  action.sa_handler = user_handler;
  sigemptyset(&action.sa_mask);
  for (int number : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaction(number, &action, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  std::string file, record_path, user, crash, run_id = "fault-trainer";
  long long count = 0;
  double rate = 0;
  std::size_t payload = 0;
  bool hook = false;
  bool fork_child = false;
  fe::signal_hook_options hook_options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--file") file = next();
    else if (arg == "--record") record_path = next();
    else if (arg == "--count") count = std::atoll(next().c_str());
    else if (arg == "--payload") payload = std::strtoull(next().c_str(), nullptr, 10);
    else if (arg == "--hook") hook = true;
    else if (arg == "--user-handler") user = next();
    else if (arg == "--crash") crash = next();
    else if (arg == "--run-id") run_id = next();
    else if (arg == "--fork-child") fork_child = true;
    else if (arg == "--rate") rate = std::atof(next().c_str());
    else if (arg == "--hook-deadline-ms") hook_options.deadline = std::chrono::milliseconds(std::atol(next().c_str()));
    else {
      std::fprintf(stderr, "trainer: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  const int fd = open(record_path.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0 || ftruncate(fd, sizeof(fe::test::shared_record)) != 0) return 2;
  void* map = mmap(nullptr, sizeof(fe::test::shared_record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return 2;
  record = static_cast<fe::test::shared_record*>(map);

  if (user == "before") install_user_handler();
  if (hook) fe::install_signal_hook(hook_options);
  if (user == "after") {
    install_user_handler();
    fe::install_signal_hook(hook_options);  // chains the handler installed after ours
  }

  fe::training_event_emitter emitter(run_id, std::make_unique<fe::file_sink>(file));
  emitter.emit_run_start();
  if (fork_child) {
    const pid_t child = fork();
    if (child > 0) {
      record->child_pid.store(child);
      int status = 0;
      waitpid(child, &status, 0);
      emitter.close();
      return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
  }
  const std::string padding(payload, 'x');
  const std::uint64_t start_ns = fe::test::monotonic_ns();
  for (long long i = 0; (count == 0 || i < count) && !stop_requested; ++i) {
    if (rate > 0) {
      const auto due = start_ns + static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / rate);
      while (fe::test::monotonic_ns() < due) {
      }
    }
    bool accepted;
    if (payload == 0) {
      accepted = emitter.emit_metrics(i, {{"i", static_cast<double>(i)}});
    } else {
      accepted = emitter.emit_log("info", "i=" + std::to_string(i) + " " + padding);
    }
    if (accepted) record->accept(static_cast<std::uint64_t>(i));
    if (i == 100) {
      record->ready.store(1);
      if (crash == "segv") raise(SIGSEGV);
      if (crash == "abort") std::abort();
    }
  }
  emitter.emit_run_complete("success");
  emitter.close();
  return stop_requested ? 3 : 0;
}

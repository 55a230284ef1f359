#pragma once
/// The signal hook: a terminal event when the process is stopped by a signal.
///
/// Once installed, SIGTERM, SIGHUP and SIGQUIT make every live emitter of this process write
/// `run_complete` with status `killed`, SIGINT with status `cancelled`, and flush, within
/// `signal_hook_options::deadline`. Then the process goes on exactly as it would have without the
/// hook: a handler that was installed before (the application's, Python's) is called with the same
/// arguments, and a default disposition ends the process with the same signal status. Fatal signals
/// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) get a best-effort `error` + `run_complete failed`,
/// then their previous disposition.
///
/// The handler only wakes a watcher thread (a pipe write) and waits for it with poll(); the
/// emitting and flushing happen on that thread, so the handler stays async-signal-safe. Signals
/// that are ignored (SIG_IGN, as under nohup) are left alone: the process is not stopped by them.
/// SIGUSR1/SIGUSR2 are not hooked: they are application signals (Slurm's --signal pre-emption
/// warning, checkpoint requests) after which the run usually goes on.

#include <chrono>

namespace foxml::events {

struct signal_hook_options {
  /// Longest time one signal may spend writing and flushing the terminal events of all emitters.
  std::chrono::milliseconds deadline{1000};
  /// Hook SIGTERM, SIGHUP, SIGQUIT (`killed`) and SIGINT (`cancelled`).
  bool termination_signals = true;
  /// Hook SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT (best effort `error` + `run_complete failed`).
  bool fatal_signals = true;
};

/// Installs the hook for the whole process (all emitters, also those created later). Calling it
/// again is how a handler installed after ours is chained: a signal whose disposition is no longer
/// ours takes the current one as its previous disposition and gets ours back. Throws
/// std::system_error when the watcher thread or its pipe cannot be created, std::invalid_argument
/// for a negative deadline. Thread-safe.
void install_signal_hook(const signal_hook_options& options = {});

/// Puts back the previous disposition of every signal that still has ours (a signal whose handler
/// was replaced since is left as it is). Emitters stay as they are.
void remove_signal_hook() noexcept;

/// Whether install_signal_hook() ran and remove_signal_hook() did not since.
bool signal_hook_installed() noexcept;

}  // namespace foxml::events

// raft_sim: runs the KRaft core in the deterministic simulator.
//   raft_sim --seed N [--voters 3|5] [--verbose]      one run, replayable exactly
//   raft_sim --seeds A-B [--voters V]                  a fixed range (ctest)
//   raft_sim --soak SECONDS [--start N]                random seeds until time is up
//   raft_sim --fault vote_ignores_log --expect-failure --seeds A-B
//                                                      a broken core must be caught
//   raft_sim --check-determinism --seeds A-B           every run twice, identical traces
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sim/simulator.h"

using bulwark::sim::RunResult;
using bulwark::sim::SimOptions;

namespace {

struct Args {
  SimOptions options;
  uint64_t first = 1, last = 1;
  bool expect_failure = false;
  bool check_determinism = false;
  double soak_seconds = 0;
  bool both_sizes = false;  // alternate 3 and 5 voters (soak)
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "raft_sim: %s\nusage: raft_sim [--seed N | --seeds A-B | --soak SECONDS [--start N]] [--voters 3|5]\n"
               "                [--observers K] [--fault none|vote_ignores_log|commit_without_majority|accept_stale_fetch_answers|\n"
               "                reset_timer_on_any_epoch|advertise_volatile_log] [--expect-failure]\n"
               "                [--check-determinism] [--fault-ms MS] [--quiet-ms MS] [--metadata] [--verbose]\n", why);
  std::exit(2);
}

uint64_t number(const char* text) {
  char* end = nullptr;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end) usage("not a number");
  return value;
}

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
      return argv[++i];
    };
    if (flag == "--seed") args.first = args.last = number(value());
    else if (flag == "--seeds") {
      std::string range = value();
      auto dash = range.find('-');
      if (dash == std::string::npos) usage("--seeds wants A-B");
      args.first = number(range.substr(0, dash).c_str());
      args.last = number(range.substr(dash + 1).c_str());
      if (args.last < args.first) usage("empty seed range");
    } else if (flag == "--soak") args.soak_seconds = static_cast<double>(number(value()));
    else if (flag == "--start") args.first = number(value());
    else if (flag == "--voters") {
      args.options.voters = static_cast<int>(number(value()));
      if (args.options.voters < 1 || args.options.voters > 9) usage("--voters must be 1..9");
    } else if (flag == "--both-sizes") args.both_sizes = true;
    else if (flag == "--observers") args.options.observers = static_cast<int>(number(value()));
    else if (flag == "--fault-ms") args.options.fault_phase_ms = static_cast<int64_t>(number(value()));
    else if (flag == "--quiet-ms") args.options.quiet_phase_ms = static_cast<int64_t>(number(value()));
    else if (flag == "--verbose") args.options.verbose = true;
    else if (flag == "--metadata") args.options.machine = bulwark::sim::SimOptions::Machine::metadata;
    else if (flag == "--controller-eager-activation") {
      args.options.machine = bulwark::sim::SimOptions::Machine::metadata;
      args.options.controller_eager_activation = true;
    }
    else if (flag == "--expect-failure") args.expect_failure = true;
    else if (flag == "--check-determinism") args.check_determinism = true;
    else if (flag == "--fault") {
      std::string name = value();
      if (name == "none") args.options.core_fault = bulwark::raft::TestFault::none;
      else if (name == "vote_ignores_log") args.options.core_fault = bulwark::raft::TestFault::vote_ignores_log;
      else if (name == "commit_without_majority") args.options.core_fault = bulwark::raft::TestFault::commit_without_majority;
      else if (name == "accept_stale_fetch_answers") args.options.core_fault = bulwark::raft::TestFault::accept_stale_fetch_answers;
      else if (name == "reset_timer_on_any_epoch") args.options.core_fault = bulwark::raft::TestFault::reset_timer_on_any_epoch;
      else if (name == "advertise_volatile_log") args.options.core_fault = bulwark::raft::TestFault::advertise_volatile_log;
      else usage("unknown --fault");
    } else usage(("unknown flag " + flag).c_str());
  }
  return args;
}

const char* fault_name(bulwark::raft::TestFault fault) {
  switch (fault) {
    case bulwark::raft::TestFault::none: return "";
    case bulwark::raft::TestFault::vote_ignores_log: return "vote_ignores_log";
    case bulwark::raft::TestFault::commit_without_majority: return "commit_without_majority";
    case bulwark::raft::TestFault::accept_stale_fetch_answers: return "accept_stale_fetch_answers";
    case bulwark::raft::TestFault::reset_timer_on_any_epoch: return "reset_timer_on_any_epoch";
    case bulwark::raft::TestFault::advertise_volatile_log: return "advertise_volatile_log";
  }
  return "";
}

void print_failure(const SimOptions& options, const RunResult& result) {
  std::printf("FAIL seed %llu (%d voters, %d observers): %s at t=%lld ms\n", static_cast<unsigned long long>(options.seed),
              options.voters, options.observers, result.violation.c_str(), static_cast<long long>(result.violation_time_ms));
  std::printf("replay: raft_sim --seed %llu --voters %d --observers %d%s%s%s --fault-ms %lld --quiet-ms %lld --verbose\n",
              static_cast<unsigned long long>(options.seed), options.voters, options.observers,
              options.controller_eager_activation ? " --controller-eager-activation"
              : options.machine == bulwark::sim::SimOptions::Machine::metadata ? " --metadata" : "",
              options.core_fault == bulwark::raft::TestFault::none ? "" : " --fault ", fault_name(options.core_fault),
              static_cast<long long>(options.fault_phase_ms), static_cast<long long>(options.quiet_phase_ms));
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parse(argc, argv);
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };

  uint64_t runs = 0, failures = 0;
  RunResult totals;
  for (uint64_t seed = args.first;; ++seed) {
    if (args.soak_seconds > 0 ? elapsed() >= args.soak_seconds : seed > args.last) break;
    SimOptions options = args.options;
    options.seed = seed;
    if (args.both_sizes) options.voters = seed % 2 ? 3 : 5;
    RunResult result = bulwark::sim::run_simulation(options);
    ++runs;
    totals.events += result.events;
    totals.committed += result.committed;
    totals.leaders += result.leaders;
    totals.crashes += result.crashes;
    totals.snapshots_saved += result.snapshots_saved;
    totals.snapshots_installed += result.snapshots_installed;
    totals.truncations += result.truncations;
    if (args.check_determinism) {
      RunResult again = bulwark::sim::run_simulation(options);
      if (again.trace_hash != result.trace_hash || again.ok != result.ok || again.violation != result.violation) {
        std::printf("NONDETERMINISTIC seed %llu\n", static_cast<unsigned long long>(seed));
        return 1;
      }
    }
    if (options.verbose || args.first == args.last)
      std::printf("seed %llu: %s, %lld events, %lld committed, %lld leaders, %lld crashes, %lld snapshots saved, %lld installed, %lld truncations, trace %016llx\n",
                  static_cast<unsigned long long>(seed), result.ok ? "ok" : "FAILED", static_cast<long long>(result.events),
                  static_cast<long long>(result.committed), static_cast<long long>(result.leaders), static_cast<long long>(result.crashes),
                  static_cast<long long>(result.snapshots_saved), static_cast<long long>(result.snapshots_installed),
                  static_cast<long long>(result.truncations), static_cast<unsigned long long>(result.trace_hash));
    if (!result.ok) {
      ++failures;
      print_failure(options, result);
      if (args.expect_failure) {
        std::printf("the broken core was caught after %llu runs, as expected\n", static_cast<unsigned long long>(runs));
        return 0;
      }
      if (args.soak_seconds <= 0) return 1;
    }
  }
  if (args.soak_seconds <= 0 && args.first == args.last) return failures ? 1 : 0;  // replay output stays byte-identical
  std::printf("%llu runs, %llu failures, %.1f s (%.1f runs/s); %lld events, %lld committed entries, %lld leaders, %lld crashes, "
              "%lld snapshots saved, %lld installed, %lld truncations\n",
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(failures), elapsed(), runs / std::max(elapsed(), 1e-9),
              static_cast<long long>(totals.events), static_cast<long long>(totals.committed), static_cast<long long>(totals.leaders),
              static_cast<long long>(totals.crashes), static_cast<long long>(totals.snapshots_saved),
              static_cast<long long>(totals.snapshots_installed), static_cast<long long>(totals.truncations));
  if (args.expect_failure) {
    std::printf("the broken core was NOT caught in %llu runs\n", static_cast<unsigned long long>(runs));
    return 1;
  }
  return failures ? 1 : 0;
}

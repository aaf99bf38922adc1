// Runs a fuzz target (`LLVMFuzzerTestOneInput`) where libFuzzer is not at
// hand, as with g++: every seed file, then, when a number of runs is given,
// every truncation of the short seeds and that many deterministic mutations
// of them (bit flips, byte changes, insertions, deletions, duplicated runs,
// splices, truncations). The sanitizers, an uncaught exception or a target's
// own check abort on a bug; the input at fault is saved first.
//
//   fuzz_plan tests/fuzz/corpus/plan 20000 [--seed N] [--timeout S]
//   fuzz_plan crash-4f1c9a2e0b7d3e65      # replays one input

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#  define TROUPE_FUZZ_SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define TROUPE_FUZZ_SANITIZED 1
#  endif
#endif
#ifdef TROUPE_FUZZ_SANITIZED
#  include <sanitizer/common_interface_defs.h>
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

namespace {

using bytes = std::vector<uint8_t>;

// Seeds up to this size are also run cut at every length.
constexpr size_t truncate_all_below = 1024;
// Mutated inputs grow no larger than this or twice the largest seed.
constexpr size_t min_max_size = 4096;

// -- the input at fault -------------------------------------------------------

// What runs now, for the handlers below: they may only make
// async-signal-safe calls.
volatile sig_atomic_t running = 0;
const uint8_t* volatile current_data = nullptr;
volatile size_t current_size = 0;
char crash_file[64] = "";
unsigned timeout_s = 10;

void write_all(int fd, const void* data, size_t size) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    auto n = ::write(fd, p, size);
    if (n <= 0)
      return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void say(const char* text) {
  write_all(2, text, std::strlen(text));
}

// Saves the input that runs now as `crash_file`, named before it ran.
void save_current_input() {
  if (!running)
    return;
  int fd = ::open(crash_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return;
  write_all(fd, current_data, current_size);
  ::close(fd);
  say("fuzz: the input at fault is in ");
  say(crash_file);
  say(" (run the target on it to replay it)\n");
}

extern "C" void on_death() {
  save_current_input();
}

void on_fatal_signal(int sig) {
  save_current_input();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void on_alarm(int) {
  say("fuzz: an input ran longer than the time allowed (--timeout)\n");
  save_current_input();
  ::_exit(70);
}

void handle(int sig, void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(sig, &sa, nullptr);
}

void install_handlers() {
#ifdef TROUPE_FUZZ_SANITIZED
  // The sanitizers report the fault, then call this before dying.
  __sanitizer_set_death_callback(on_death);
  // SIGABRT (std::terminate, a failed check) is not theirs.
  handle(SIGABRT, on_fatal_signal);
#else
  // A stack overflow is reported on a stack of its own.
  static char alt_stack[1 << 16];
  stack_t ss{};
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof(alt_stack);
  ::sigaltstack(&ss, nullptr);
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL})
    handle(sig, on_fatal_signal);
#endif
  handle(SIGALRM, on_alarm);
}

// FNV-1a, to name an input's file by its bytes.
uint64_t fingerprint(const bytes& x) {
  uint64_t h = 14695981039346656037ull;
  for (auto b : x) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

void run(const bytes& input) {
  // A buffer of exactly the input's size, so reading past its end is a
  // heap overflow the sanitizer sees.
  std::unique_ptr<uint8_t[]> copy{new uint8_t[input.size()]};
  std::copy(input.begin(), input.end(), copy.get());
  std::snprintf(crash_file, sizeof(crash_file), "crash-%016llx",
                static_cast<unsigned long long>(fingerprint(input)));
  current_size = input.size();
  current_data = copy.get();
  running = 1;
  ::alarm(timeout_s);
  LLVMFuzzerTestOneInput(copy.get(), input.size());
  ::alarm(0);
  running = 0;
}

// -- mutations ----------------------------------------------------------------

// SplitMix64: the same numbers everywhere, for a given seed.
class prng {
public:
  explicit prng(uint64_t seed) : state_(seed) {
    // nop
  }

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  /// A number in [0, n); 0 when n is 0.
  size_t below(size_t n) {
    return n == 0 ? 0 : static_cast<size_t>(next() % n);
  }

private:
  uint64_t state_;
};

// Bytes and words that mean something to the formats under test: YAML and
// JSON structure, ill-formed UTF-8, big numbers, CAF's length prefixes.
const std::vector<std::string>& dictionary() {
  static const std::vector<std::string> words{
    "{", "}", "[", "]", ",", ":", ": ", "- ", "\"", "'", "\\", "\\u0000",
    "\\ud800", "\n", "\n  ", "\t", "&a ", "*a", "<<: *a", "!!str ", "!!binary ",
    "? ", "|", ">", "---\n", "...\n", "#", "%YAML 1.2\n", "null", "true",
    "~", "-1", "0", "1e309", "-1e309", "0x7fffffff", "9223372036854775808",
    "18446744073709551616", "1.5", "nan", ".inf", "\xC3", "\xC3\xA9",
    "\xE2\x82", "\xF0\x9F\x98\x80", "\xED\xA0\x80", "\xC0\xAF", "\xFF",
    "\xFE\xFF", std::string("\0", 1), "\xFF\xFF\xFF\xFF\x0F", "\x80\x80\x80\x80",
    std::string("\x7F\xFF\xFF\xFF", 4), std::string("\0\0\0\0", 4), "**",
    "**/", "*", "?", "/", "../", "id", "depends_on", "workstreams", "gates",
    "after", "owns", "executor", "kind", "command", "summary", "outputs",
    "files_changed"};
  return words;
}

class mutator {
public:
  mutator(const std::vector<bytes>& seeds, uint64_t seed)
    : seeds_(seeds), rng_(seed) {
    size_t largest = 0;
    for (auto& s : seeds)
      largest = std::max(largest, s.size());
    max_size_ = std::max(min_max_size, 2 * largest);
  }

  bytes next() {
    auto x = seeds_[rng_.below(seeds_.size())];
    auto rounds = 1 + rng_.below(4);
    for (size_t i = 0; i < rounds; ++i)
      mutate(x);
    if (x.size() > max_size_)
      x.resize(max_size_);
    return x;
  }

private:
  void mutate(bytes& x) {
    auto pos = [&](size_t extra) { return rng_.below(x.size() + extra); };
    switch (rng_.below(x.empty() ? 3 : 11)) {
      case 0: { // insert random bytes
        auto n = 1 + rng_.below(8);
        auto at = pos(1);
        for (size_t i = 0; i < n; ++i)
          x.insert(x.begin() + static_cast<std::ptrdiff_t>(at),
                   static_cast<uint8_t>(rng_.next()));
        break;
      }
      case 1: { // insert a word
        auto& w = dictionary()[rng_.below(dictionary().size())];
        x.insert(x.begin() + static_cast<std::ptrdiff_t>(pos(1)), w.begin(),
                 w.end());
        break;
      }
      case 2: { // splice: this one's head, another's tail
        auto& other = seeds_[rng_.below(seeds_.size())];
        auto head = pos(1);
        auto from = rng_.below(other.size() + 1);
        x.resize(head);
        x.insert(x.end(), other.begin() + static_cast<std::ptrdiff_t>(from),
                 other.end());
        break;
      }
      case 3: // flip a bit
        x[pos(0)] ^= static_cast<uint8_t>(1u << rng_.below(8));
        break;
      case 4: // set a byte
        x[pos(0)] = static_cast<uint8_t>(rng_.next());
        break;
      case 5: { // nudge a byte, as a length or a count
        auto& b = x[pos(0)];
        b = static_cast<uint8_t>(b + (rng_.below(2) ? 1 : -1)
                                       * static_cast<int>(1 + rng_.below(4)));
        break;
      }
      case 6: { // overwrite with a word
        auto& w = dictionary()[rng_.below(dictionary().size())];
        auto at = pos(0);
        for (size_t i = 0; i < w.size() && at + i < x.size(); ++i)
          x[at + i] = static_cast<uint8_t>(w[i]);
        break;
      }
      case 7: { // delete a run
        auto at = pos(0);
        auto n = 1 + rng_.below(std::min<size_t>(16, x.size() - at));
        x.erase(x.begin() + static_cast<std::ptrdiff_t>(at),
                x.begin() + static_cast<std::ptrdiff_t>(at + n));
        break;
      }
      case 8: { // repeat a run in place, as nesting or lists grow
        auto at = pos(0);
        auto n = 1 + rng_.below(std::min<size_t>(32, x.size() - at));
        bytes run(x.begin() + static_cast<std::ptrdiff_t>(at),
                  x.begin() + static_cast<std::ptrdiff_t>(at + n));
        auto times = 1 + rng_.below(16);
        for (size_t i = 0; i < times; ++i)
          x.insert(x.begin() + static_cast<std::ptrdiff_t>(at), run.begin(),
                   run.end());
        break;
      }
      case 9: { // copy a run elsewhere
        auto at = pos(0);
        auto n = 1 + rng_.below(std::min<size_t>(64, x.size() - at));
        bytes run(x.begin() + static_cast<std::ptrdiff_t>(at),
                  x.begin() + static_cast<std::ptrdiff_t>(at + n));
        x.insert(x.begin() + static_cast<std::ptrdiff_t>(pos(1)), run.begin(),
                 run.end());
        break;
      }
      default: // truncate
        x.resize(pos(0));
        break;
    }
  }

  const std::vector<bytes>& seeds_;
  prng rng_;
  size_t max_size_;
};

// -- seeds and arguments ------------------------------------------------------

bool read_file(const fs::path& file, bytes& out) {
  std::ifstream in{file, std::ios::binary};
  out.assign(std::istreambuf_iterator<char>{in},
             std::istreambuf_iterator<char>{});
  return !in.bad();
}

int usage(const char* self) {
  std::fprintf(stderr,
               "usage: %s PATH... [RUNS] [--seed N] [--timeout SECONDS]\n"
               "  Runs every file in PATH (a file or a directory of seeds);\n"
               "  with RUNS, also every truncation of seeds under %zu bytes\n"
               "  and RUNS mutations of the seeds, chosen by --seed (1).\n"
               "  An input running longer than --timeout (%u) fails.\n",
               self, truncate_all_below, timeout_s);
  return 2;
}

bool parse_number(const char* s, uint64_t& x) {
  if (*s == '\0')
    return false;
  char* end = nullptr;
  errno = 0;
  x = std::strtoull(s, &end, 10);
  return errno == 0 && *end == '\0' && std::isdigit(*s);
}

} // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> paths;
  uint64_t runs = 0;
  bool mutate = false;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    uint64_t x = 0;
    if ((arg == "--seed" || arg == "--timeout") && i + 1 < argc
        && parse_number(argv[i + 1], x)) {
      if (arg == "--seed")
        seed = x;
      else
        timeout_s = static_cast<unsigned>(std::max<uint64_t>(x, 1));
      ++i;
    } else if (parse_number(argv[i], x) && !fs::exists(arg)) {
      runs = x;
      mutate = true;
    } else if (!arg.empty() && arg[0] != '-') {
      paths.emplace_back(arg);
    } else {
      return usage(argv[0]);
    }
  }
  if (paths.empty())
    return usage(argv[0]);
  // Files in name order, so that runs with the same arguments are the same.
  std::vector<fs::path> files;
  for (auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (auto& e : fs::directory_iterator{p, ec})
        if (e.is_regular_file())
          files.push_back(e.path());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "fuzz: %s is no file or directory\n", p.c_str());
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<bytes> seeds;
  for (auto& f : files) {
    bytes x;
    if (!read_file(f, x)) {
      std::fprintf(stderr, "fuzz: cannot read %s\n", f.c_str());
      return 2;
    }
    seeds.push_back(std::move(x));
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "fuzz: no seeds\n");
    return 2;
  }
  install_handlers();
  auto start = std::chrono::steady_clock::now();
  for (auto& s : seeds)
    run(s);
  size_t truncations = 0;
  if (mutate) {
    for (auto& s : seeds)
      if (s.size() < truncate_all_below)
        for (size_t n = 0; n < s.size(); ++n, ++truncations)
          run(bytes(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n)));
    mutator m{seeds, seed};
    for (uint64_t i = 0; i < runs; ++i)
      run(m.next());
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now()
                                       - start;
  std::fprintf(stderr,
               "fuzz: %zu seeds, %zu truncations, %llu mutations (seed %llu) "
               "in %.1f s: no crash\n",
               seeds.size(), truncations, static_cast<unsigned long long>(runs),
               static_cast<unsigned long long>(seed), took.count());
  return 0;
}

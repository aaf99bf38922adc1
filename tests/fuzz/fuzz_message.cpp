// The binary form of every message type, through CAF 0.17's
// `binary_deserializer`: the first byte picks a type (or a whole
// `caf::message`, whose elements, vectors of the types included, are found
// by their registered names as a node finds them), the rest is read as one,
// and what was read goes through what a receiving node does first: its
// text made UTF-8, a plan validated and assessed, results encoded as JSON.
//
// Beyond not crashing: what was read writes and reads back to the same
// bytes, and after `make_valid_utf8_fields` the strict JSON dump does not
// throw.
//
// CAF 0.17 reads some bit patterns of a double as infinity, and its
// serializer never returns on an infinite double (`detail::pack754` halves
// it forever). So a value with one is written back only where Troupe would
// send it on: a plan, once validation accepted it.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "check.hpp"
#include "message_types.hpp"
#include "troupe/protocol/message_types.hpp"
#include "troupe/protocol/plan_io.hpp"
#include "troupe/protocol/valid_text.hpp"

namespace {

using namespace troupe;

// An actor system only to look types up by name: no middleman, no
// scheduler threads. Never destroyed: a fuzz run ends with the process.
caf::actor_system& system() {
  static caf::actor_system* sys = [] {
    static caf::actor_system_config cfg;
    add_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    return new caf::actor_system(cfg);
  }();
  return *sys;
}

// Whether every floating-point number in a protocol value is finite,
// visiting its fields through `inspect`.
class finite_check {
public:
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;

  bool finite = true;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    (visit(xs), ...);
  }

private:
  template <class T>
  void visit(const std::vector<T>& xs) {
    for (auto& x : xs)
      visit(x);
  }

  template <class K, class V>
  void visit(const std::map<K, V>& xs) {
    for (auto& [k, v] : xs)
      visit(v);
  }

  template <class T>
  void visit(const T& x) {
    if constexpr (std::is_floating_point_v<T>)
      finite = finite && std::isfinite(x);
    else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>
                       || std::is_same_v<T, std::string>
                       || std::is_base_of_v<caf::meta::annotation, T>)
      ; // nop: no numbers of interest
    else
      inspect(*this, const_cast<T&>(x));
  }
};

template <class T>
bool all_finite(const T& x) {
  finite_check f;
  f(x);
  return f.finite;
}

template <class T>
std::vector<char> serialized(T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  TROUPE_FUZZ_CHECK(!sink(x));
  return buf;
}

// What a node does with a value it got from a peer.
template <class T>
void receive(T x) {
  if (all_finite(x)) {
    auto bytes = serialized(x);
    T y;
    caf::binary_deserializer source{nullptr, bytes};
    TROUPE_FUZZ_CHECK(!source(y));
    TROUPE_FUZZ_CHECK(source.remaining() == 0);
    TROUPE_FUZZ_CHECK(serialized(y) == bytes);
  }
  make_valid_utf8_fields(x);
  if constexpr (std::is_constructible_v<nlohmann::json, const T&>) {
    nlohmann::json j = x;
    j.dump();
  }
  if constexpr (std::is_same_v<T, plan>) {
    // As the orchestrator takes a run.
    validation_options opts;
    diagnostics out;
    validate_plan(x, opts, out);
    if (out.ok()) {
      nlohmann::json j = assess(x);
      j.dump();
      // Its workstreams go on to other nodes.
      TROUPE_FUZZ_CHECK(all_finite(x));
      serialized(x);
    }
  }
}

template <class T>
void read_one(const char* data, size_t size) {
  T x;
  caf::binary_deserializer source{nullptr, data, size};
  if (source(x))
    return;
  receive(std::move(x));
}

template <size_t... Is>
void read_as(size_t type, const char* data, size_t size,
             std::index_sequence<Is...>) {
  ((type == Is ? read_one<std::tuple_element_t<Is, fuzz::message_types>>(
                   data, size)
               : void()),
   ...);
}

// Receives element `i` of `msg` if it is a `T` or a `std::vector<T>`
// (registered along with `T`).
template <class T>
void receive_element(const caf::message& msg, size_t i) {
  if (msg.match_element<T>(i))
    receive(msg.get_as<T>(i));
  else if (msg.match_element<std::vector<T>>(i))
    receive(msg.get_as<std::vector<T>>(i));
}

template <size_t... Is>
void receive_element(const caf::message& msg, size_t i,
                     std::index_sequence<Is...>) {
  (receive_element<std::tuple_element_t<Is, fuzz::message_types>>(msg, i),
   ...);
}

void read_message(const char* data, size_t size) {
  caf::message msg;
  caf::binary_deserializer source{system().dummy_execution_unit(), data,
                                  size};
  if (source(msg))
    return;
  for (size_t i = 0; i < msg.size(); ++i)
    receive_element(msg, i, std::make_index_sequence<fuzz::type_count>{});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  auto type = data[0] % fuzz::selector_count;
  auto rest = reinterpret_cast<const char*>(data + 1);
  if (type == fuzz::message_selector)
    read_message(rest, size - 1);
  else
    read_as(type, rest, size - 1, std::make_index_sequence<fuzz::type_count>{});
  return 0;
}

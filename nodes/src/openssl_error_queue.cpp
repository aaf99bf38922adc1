// CAF 0.17's TLS sessions (libcaf_openssl) run every connection of a node on
// one thread and ask SSL_get_error() after each I/O call without clearing
// OpenSSL's per-thread error queue first. With OpenSSL 3, an error left
// there by one connection (a peer that closed without close_notify, a
// failed handshake) makes the next call on any other connection look
// failed, and CAF drops that healthy connection too. OpenSSL's rule is to
// clear the queue before each call; these wrappers do so for the calls CAF
// makes, and forward to the real functions. They take effect because the
// executable defines the symbols libcaf_openssl looks up.

#include <dlfcn.h>

struct ssl_st;

namespace {

template <class F>
F real(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

void clear_error_queue() {
  static auto clear = real<void (*)()>("ERR_clear_error");
  if (clear)
    clear();
}

} // namespace

extern "C" {

int SSL_read(ssl_st* s, void* buf, int num) {
  static auto f = real<int (*)(ssl_st*, void*, int)>("SSL_read");
  clear_error_queue();
  return f(s, buf, num);
}

int SSL_write(ssl_st* s, const void* buf, int num) {
  static auto f = real<int (*)(ssl_st*, const void*, int)>("SSL_write");
  clear_error_queue();
  return f(s, buf, num);
}

int SSL_accept(ssl_st* s) {
  static auto f = real<int (*)(ssl_st*)>("SSL_accept");
  clear_error_queue();
  return f(s);
}

int SSL_connect(ssl_st* s) {
  static auto f = real<int (*)(ssl_st*)>("SSL_connect");
  clear_error_queue();
  return f(s);
}

} // extern "C"

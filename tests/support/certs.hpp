#pragma once

// Certificates for tests that speak TLS, made with the `openssl` command.

#include <string>
#include <utility>
#include <vector>

#include "support/cli.hpp"
#include "support/temp_dir.hpp"

namespace troupe::test {

/// Makes, in `dir`, each CA of `cas` (NAME.pem, NAME.key), then each
/// certificate of `certs`, a name and the CA that signs it (NAME.pem,
/// NAME.key), for 127.0.0.1. Returns whether openssl did it all.
inline bool
make_certs(const temp_dir& dir, const std::vector<std::string>& cas,
           const std::vector<std::pair<std::string, std::string>>& certs) {
  std::string script = R"(set -e
exec 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
mkca() { openssl req -x509 -newkey rsa:2048 -nodes -keyout $1.key -out $1.pem -days 2 -subj /CN=$1; }
mkcert() { openssl req -newkey rsa:2048 -nodes -keyout $1.key -out $1.csr -subj /CN=$1
           openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -extfile san.ext -out $1.pem -days 2; }
)";
  for (auto& ca : cas)
    script += "mkca " + sh_quote(ca) + "\n";
  for (auto& [name, ca] : certs)
    script += "mkcert " + sh_quote(name) + " " + sh_quote(ca) + "\n";
  return run_shell(script, dir.str()).exit_code == 0;
}

} // namespace troupe::test

// A throwaway PKI for tests, made at test time with Debian's `openssl` CLI (installed by
// bazel/install_deps.sh) in a directory of the test's own: CAs, server and client
// certificates, and expired ones. EC P-256 keys, so that making all of them takes a
// fraction of a second.
//
//   absl::StatusOr<TestPki> pki = MakeTestPki(std::getenv("TEST_TMPDIR"));
//   options.security.tls_cert_file = pki->server.cert;
//
// Thread-safety: thread-compatible (MakeTestPki runs openssl in child processes).
#ifndef MEMLOAD_TESTS_TESTING_TEST_CERTS_H_
#define MEMLOAD_TESTS_TESTING_TEST_CERTS_H_

#include <string>

#include "absl/status/statusor.h"
#include "tests/testing/files.h"  // ReadFile/WriteFile, which users of the PKI need.

namespace memload {
namespace testing {

struct CertFiles {
  std::string cert;  // PEM paths.
  std::string key;
};

struct TestPki {
  std::string ca_cert;        // "memload test CA".
  std::string other_ca_cert;  // An unrelated CA ("some other CA").
  // Signed by the CA. The server's name is "localhost" and 127.0.0.1 (subjectAltName).
  CertFiles server;
  CertFiles client;  // Subject "CN=memloadctl-test,O=memload tests".
  // Signed by the CA, for the DNS name "agent.memload.test" only (not 127.0.0.1): needs a
  // target-name override to be accepted on 127.0.0.1.
  CertFiles named_server;
  CertFiles other_client;  // Signed by the other CA.
  // Signed by the CA; their validity ended a day ago.
  CertFiles expired_server;
  CertFiles expired_client;
  std::string encrypted_client_key;  // The client's key under the passphrase "secret".
};

// Writes everything into `dir` (which must exist). Internal error with openssl's output
// when a command fails.
absl::StatusOr<TestPki> MakeTestPki(const std::string& dir);

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_TEST_CERTS_H_

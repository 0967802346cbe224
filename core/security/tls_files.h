// PEM files for TLS, read and checked before use, so that a missing file, a file without a
// certificate, an expired certificate or a key that belongs to another certificate is a
// clear error at start instead of a failed handshake on every connection later. Shared by
// memload-agent and memloadctl (their --tls-* flags); parsing is OpenSSL's (libcrypto).
//
//   MEMLOAD_ASSIGN_OR_RETURN(std::string roots, ReadCaCertificates("/etc/memload/ca.crt"));
//   MEMLOAD_ASSIGN_OR_RETURN(KeyCertPair pair, ReadKeyCertPair("/etc/memload/tls.crt",
//                                                              "/etc/memload/tls.key"));
//
// Every message names the file. Thread-safe free functions.
#ifndef MEMLOAD_CORE_SECURITY_TLS_FILES_H_
#define MEMLOAD_CORE_SECURITY_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace memload {

struct KeyCertPair {
  std::string cert_chain_pem;   // The certificate first, then any intermediates.
  std::string private_key_pem;  // Unencrypted (nobody is there to type a passphrase).
  std::string subject;          // Of the certificate, RFC 2253 ("CN=agent,O=ops"): for logs.
  absl::Time not_after;
};

// The certificates in `path` (one or more, PEM). NotFound when it cannot be read;
// InvalidArgument when it holds no certificate or one that does not parse.
absl::StatusOr<std::string> ReadCaCertificates(const std::string& path);

// A certificate (chain) and its private key. Besides the errors above: FailedPrecondition
// when the certificate has expired or is not valid yet; InvalidArgument when the key does
// not parse, is encrypted, or does not match the certificate.
absl::StatusOr<KeyCertPair> ReadKeyCertPair(const std::string& cert_path,
                                            const std::string& key_path);

}  // namespace memload

#endif  // MEMLOAD_CORE_SECURITY_TLS_FILES_H_

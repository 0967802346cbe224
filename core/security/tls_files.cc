#include "core/security/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/bounded_read.h"

namespace memload {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;

// The reason of OpenSSL's most recent error, and the error queue emptied: the queue is per
// thread and would otherwise surface in an unrelated later call (gRPC's handshakes).
std::string TakeOpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return reason != nullptr ? reason : "unknown error";
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  return ReadFileUpTo(path, kMaxPemFileBytes, "");
}

Bio MemoryBio(const std::string& text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in `pem`, in order.
absl::StatusOr<std::vector<Cert>> ParseCertificates(const std::string& pem,
                                                    const std::string& path) {
  std::vector<Cert> certs;
  Bio bio = MemoryBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  // The loop ends at the end of the text (no further "BEGIN" line) or at a broken block.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end =
      ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (last != 0 && !clean_end) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a certificate does not parse (", TakeOpenSslError(), ")"));
  }
  ERR_clear_error();
  if (certs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no PEM certificate (\"-----BEGIN CERTIFICATE-----\") in it"));
  }
  return certs;
}

absl::Time ToTime(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

std::string FormatUtc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", time, absl::UTCTimeZone());
}

std::string SubjectOf(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, length > 0 ? length : 0);
}

// Refuses to prompt for a passphrase: an encrypted key fails to load instead.
int NoPassphrase(char*, int, int, void*) { return 0; }

}  // namespace

absl::StatusOr<std::string> ReadCaCertificates(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadPemFile(path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::vector<Cert>> certs = ParseCertificates(*pem, path);
  if (!certs.ok()) return certs.status();
  return pem;
}

absl::StatusOr<KeyCertPair> ReadKeyCertPair(const std::string& cert_path,
                                            const std::string& key_path) {
  KeyCertPair pair;
  absl::StatusOr<std::string> cert_pem = ReadPemFile(cert_path);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::vector<Cert>> certs = ParseCertificates(*cert_pem, cert_path);
  if (!certs.ok()) return certs.status();
  X509* leaf = certs->front().get();
  pair.subject = SubjectOf(leaf);
  pair.not_after = ToTime(X509_get0_notAfter(leaf));
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    return absl::FailedPreconditionError(absl::StrCat(cert_path, ": certificate \"", pair.subject,
                                                      "\" expired on ", FormatUtc(pair.not_after)));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(cert_path, ": certificate \"", pair.subject, "\" is not valid before ",
                     FormatUtc(ToTime(X509_get0_notBefore(leaf)))));
  }

  absl::StatusOr<std::string> key_pem = ReadPemFile(key_path);
  if (!key_pem.ok()) return key_pem.status();
  Bio bio = MemoryBio(*key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(key_path, ": no usable private key (",
                                                   TakeOpenSslError(),
                                                   "); it must be PEM and unencrypted"));
  }
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(key_path, " is not the private key of ",
                                                   cert_path, " (\"", pair.subject, "\")"));
  }
  pair.cert_chain_pem = *std::move(cert_pem);
  pair.private_key_pem = *std::move(key_pem);
  return pair;
}

}  // namespace memload

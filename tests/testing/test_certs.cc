#include "tests/testing/test_certs.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/testing/files.h"
#include "tests/testing/subprocess.h"

namespace memload {
namespace testing {
namespace {

// Extensions by name, so that nothing depends on the system's openssl.cnf.
constexpr char kConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[named_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:agent.memload.test
[client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
)";

std::string OpensslBinary() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "", ':')) {
    const std::string candidate = absl::StrCat(dir, "/openssl");
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "/usr/bin/openssl";
}

class Maker {
 public:
  explicit Maker(std::string dir) : dir_(std::move(dir)), openssl_(OpensslBinary()) {}

  absl::Status Run(std::vector<std::string> args) {
    if (access(openssl_.c_str(), X_OK) != 0) {
      return absl::InternalError(
          "the openssl CLI is missing (bazel/install_deps.sh installs Debian's openssl)");
    }
    args.insert(args.begin(), openssl_);
    CommandResult result = RunCommand(args, absl::Seconds(30));
    if (result.exit_code != 0) {
      return absl::InternalError(
          absl::StrCat(absl::StrJoin(args, " "), " exited ", result.exit_code, ": ", result.err));
    }
    return absl::OkStatus();
  }

  std::string Path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }

  absl::Status Ca(const std::string& name, const std::string& subject) {
    return Run({"req",         "-x509",
                "-new",        "-nodes",
                "-newkey",     "ec",
                "-pkeyopt",    "ec_paramgen_curve:P-256",
                "-keyout",     Path(name + ".key"),
                "-out",        Path(name + ".crt"),
                "-days",       "3",
                "-subj",       subject,
                "-config",     Path("pki.cnf"),
                "-extensions", "ca"});
  }

  // A certificate for `subject` signed by the CA `ca`, valid for `days` from now (-1: it
  // ended a day ago).
  absl::StatusOr<CertFiles> Leaf(const std::string& name, const std::string& subject,
                                 const std::string& ca, const std::string& extensions, int days) {
    CertFiles files{Path(name + ".crt"), Path(name + ".key")};
    absl::Status status = Run({"req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:P-256", "-keyout", files.key, "-out",
                               Path(name + ".csr"), "-subj", subject, "-config", Path("pki.cnf")});
    if (!status.ok()) return status;
    status = Run({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".crt"), "-CAkey",
                  Path(ca + ".key"), "-set_serial", std::to_string(++serial_), "-days",
                  std::to_string(days), "-extfile", Path("pki.cnf"), "-extensions", extensions,
                  "-out", files.cert});
    if (!status.ok()) return status;
    return files;
  }

 private:
  const std::string dir_;
  const std::string openssl_;
  int serial_ = 1000;
};

}  // namespace

absl::StatusOr<TestPki> MakeTestPki(const std::string& dir) {
  Maker maker(dir);
  WriteFile(maker.Path("pki.cnf"), kConfig);
  TestPki pki;
  absl::Status status = maker.Ca("ca", "/CN=memload test CA");
  if (!status.ok()) return status;
  status = maker.Ca("other-ca", "/CN=some other CA");
  if (!status.ok()) return status;
  pki.ca_cert = maker.Path("ca.crt");
  pki.other_ca_cert = maker.Path("other-ca.crt");
  struct Want {
    CertFiles* files;
    const char* name;
    const char* subject;
    const char* ca;
    const char* extensions;
    int days;
  };
  for (const Want& want : {
           Want{&pki.server, "server", "/CN=localhost", "ca", "server", 2},
           Want{&pki.client, "client", "/CN=memloadctl-test/O=memload tests", "ca", "client", 2},
           Want{&pki.named_server, "named-server", "/CN=agent.memload.test", "ca", "named_server",
                2},
           Want{&pki.other_client, "other-client", "/CN=intruder", "other-ca", "client", 2},
           Want{&pki.expired_server, "expired-server", "/CN=localhost", "ca", "server", -1},
           Want{&pki.expired_client, "expired-client", "/CN=expired-client", "ca", "client", -1},
       }) {
    absl::StatusOr<CertFiles> files =
        maker.Leaf(want.name, want.subject, want.ca, want.extensions, want.days);
    if (!files.ok()) return files.status();
    *want.files = *std::move(files);
  }
  pki.encrypted_client_key = maker.Path("client-encrypted.key");
  status = maker.Run({"pkey", "-in", pki.client.key, "-aes256", "-passout", "pass:secret", "-out",
                      pki.encrypted_client_key});
  if (!status.ok()) return status;
  return pki;
}

}  // namespace testing
}  // namespace memload

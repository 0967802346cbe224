// core/security/tls_files.h against certificates made by openssl at test time.
#include "core/security/tls_files.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_certs.h"

namespace memload {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::TestPki;
using testing::WriteFile;

class TlsFilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(std::getenv("TEST_TMPDIR"), "/pki"));
    mkdir(dir_->c_str(), 0700);
    absl::StatusOr<TestPki> pki = testing::MakeTestPki(*dir_);
    ASSERT_THAT(pki, IsOk());
    pki_ = new TestPki(*std::move(pki));
  }
  static std::string Path(const std::string& name) { return absl::StrCat(*dir_, "/", name); }

  static std::string* dir_;
  static TestPki* pki_;
};
std::string* TlsFilesTest::dir_ = nullptr;
TestPki* TlsFilesTest::pki_ = nullptr;

TEST_F(TlsFilesTest, ReadsCaBundles) {
  EXPECT_THAT(ReadCaCertificates(pki_->ca_cert), IsOk());
  WriteFile(Path("bundle.crt"), ReadFile(pki_->ca_cert) + ReadFile(pki_->other_ca_cert));
  absl::StatusOr<std::string> bundle = ReadCaCertificates(Path("bundle.crt"));
  ASSERT_THAT(bundle, IsOk());
  EXPECT_EQ(*bundle, ReadFile(Path("bundle.crt")));
}

TEST_F(TlsFilesTest, ReadsAKeyCertPair) {
  absl::StatusOr<KeyCertPair> pair = ReadKeyCertPair(pki_->client.cert, pki_->client.key);
  ASSERT_THAT(pair, IsOk());
  EXPECT_EQ(pair->subject, "O=memload tests,CN=memloadctl-test");
  EXPECT_GT(pair->not_after, absl::Now() + absl::Hours(24));
  EXPECT_EQ(pair->cert_chain_pem, ReadFile(pki_->client.cert));
  EXPECT_EQ(pair->private_key_pem, ReadFile(pki_->client.key));
}

TEST_F(TlsFilesTest, RefusesMissingAndMalformedFiles) {
  EXPECT_THAT(ReadCaCertificates(Path("missing.crt")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("missing.crt"), HasSubstr("No such file"))));
  WriteFile(Path("garbage.crt"), "not a certificate\n");
  EXPECT_THAT(ReadCaCertificates(Path("garbage.crt")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no PEM certificate")));
  // A key where a certificate belongs.
  EXPECT_THAT(ReadCaCertificates(pki_->client.key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no PEM certificate")));
  // A certificate whose base64 was damaged.
  std::string broken = ReadFile(pki_->ca_cert);
  broken[broken.size() / 2] = '*';
  WriteFile(Path("broken.crt"), broken);
  EXPECT_THAT(ReadCaCertificates(Path("broken.crt")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not parse")));
  EXPECT_THAT(ReadKeyCertPair(pki_->client.cert, Path("missing.key")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.key")));
  EXPECT_THAT(ReadKeyCertPair(pki_->client.cert, pki_->client.cert),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no usable private key")));
}

TEST_F(TlsFilesTest, RefusesAnExpiredCertificate) {
  EXPECT_THAT(ReadKeyCertPair(pki_->expired_server.cert, pki_->expired_server.key),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("expired-server.crt"), HasSubstr("\"CN=localhost\""),
                             HasSubstr("expired on"))));
}

TEST_F(TlsFilesTest, RefusesAKeyOfAnotherCertificate) {
  EXPECT_THAT(
      ReadKeyCertPair(pki_->client.cert, pki_->server.key),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("server.key is not the private key of"), HasSubstr("client.crt"))));
}

TEST_F(TlsFilesTest, RefusesAnEncryptedKeyWithoutPrompting) {
  // stdin is a terminal or not: either way nothing may wait for a passphrase.
  EXPECT_THAT(ReadKeyCertPair(pki_->client.cert, pki_->encrypted_client_key),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unencrypted")));
}

}  // namespace
}  // namespace memload

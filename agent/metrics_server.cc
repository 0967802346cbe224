#include "agent/metrics_server.h"

#include <CivetServer.h>
#include <civetweb.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <exception>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/prometheus_text.h"
#include "core/sync/mutex.h"

namespace memload {
namespace agent {
namespace {

class MetricsHandler final : public CivetHandler {
 public:
  explicit MetricsHandler(MetricsServer::Render render) : render_(std::move(render)) {}

  bool handleGet(CivetServer*, mg_connection* connection) override {
    const std::string body = render_();
    mg_send_http_ok(connection, kPrometheusTextContentType, static_cast<long long>(body.size()));
    mg_write(connection, body.data(), body.size());
    return true;
  }

 private:
  const MetricsServer::Render render_;
};

// One TCP connection to host:port, closed at once: enough to wake civetweb's accept loop.
void Poke(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return;
  for (addrinfo* one = found; one != nullptr; one = one->ai_next) {
    const int fd = socket(one->ai_family, one->ai_socktype | SOCK_CLOEXEC, one->ai_protocol);
    if (fd < 0) continue;
    const bool connected = connect(fd, one->ai_addr, one->ai_addrlen) == 0;
    close(fd);
    if (connected) break;
  }
  freeaddrinfo(found);
}

}  // namespace

absl::StatusOr<int> MetricsServer::CheckAddress(const std::string& listen_address) {
  const size_t colon = listen_address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen_address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address \"", listen_address,
                                                   "\": want HOST:PORT (port 0 picks a free one)"));
  }
  // Debian's civetweb 1.15 is built without IPv6 (mg_check_feature(8) is 0): say so,
  // rather than civetweb's "problem binding to port".
  if (listen_address.substr(0, colon).find(':') != std::string::npos && mg_check_feature(8) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", listen_address,
        "\": this civetweb has no IPv6 support; use an IPv4 address, e.g. 0.0.0.0:", port));
  }
  return port;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen_address, Render render) {
  absl::StatusOr<int> port = CheckAddress(listen_address);
  if (!port.ok()) return port.status();
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  MutexLock lock(&server->mutex_);  // Not shared yet; satisfies the analysis.
  const std::string host = listen_address.substr(0, listen_address.rfind(':'));
  server->host_ = std::string(absl::StripSuffix(absl::StripPrefix(host, "["), "]"));
  server->handler_ = std::make_unique<MetricsHandler>(std::move(render));
  const std::vector<std::string> options = {
      "listening_ports",   listen_address, "num_threads",        "4",
      "enable_keep_alive", "no",           "request_timeout_ms", "10000",
  };
  try {
    server->server_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& error) {
    // CivetServer reports a failed mg_start only by throwing; keep it inside this module.
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on \"", listen_address,
                                               "\": ", error.what(),
                                               " (is the address local and the port free?)"));
  }
  server->server_->addHandler("/metrics", server->handler_.get());
  const std::vector<int> ports = server->server_->getListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on \"", listen_address, "\": no listening port"));
  }
  server->port_ = ports.front();
  server->address_ = absl::StrCat(host, ":", server->port_);
  return server;
}

MetricsServer::~MetricsServer() { Shutdown(); }

void MetricsServer::Shutdown() {
  MutexLock lock(&mutex_);
  if (server_ == nullptr) return;
  struct Closing {
    Mutex mutex;
    std::condition_variable cv;
    bool closed ABSL_GUARDED_BY(mutex) = false;
  } closing;
  CivetServer* const civet = server_.get();
  std::thread closer([&closing, civet] {
    civet->close();
    MutexLock closed_lock(&closing.mutex);
    closing.closed = true;
    closing.cv.notify_all();
  });
  // close() sets the stop flag, then waits for the accept loop, which sleeps in poll() for
  // up to 2 s: a connection after the flag is set wakes it. Poke until close() is done.
  MutexLock closed_lock(&closing.mutex);
  while (!closing.cv.wait_for(
      closed_lock.native(), std::chrono::milliseconds(5),
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(closing.mutex) { return closing.closed; })) {
    closed_lock.Unlock();
    Poke(host_, port_);
    closed_lock.Lock();
  }
  closed_lock.Unlock();
  closer.join();
  server_.reset();
}

}  // namespace agent
}  // namespace memload

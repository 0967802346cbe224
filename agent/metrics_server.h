// MetricsServer: serves GET /metrics over HTTP with civetweb's embedded server (Debian's
// libcivetweb-dev, the library prometheus-cpp uses), answering with whatever `render`
// returns (the Prometheus text format, see agent_metrics.h).
//
//   MEMLOAD_ASSIGN_OR_RETURN(std::unique_ptr<MetricsServer> metrics,
//       MetricsServer::Start("127.0.0.1:0", [] { return FormatPrometheusText(...); }));
//   std::cout << metrics->address();   // "127.0.0.1:43121"
//   metrics->Shutdown();               // a few milliseconds
//
// Other paths answer 404. Keep-alive is off, so a scrape never holds a civetweb thread
// between scrapes (which would delay shutdown). civetweb's accept loop looks at its stop
// flag only every 2 s; Shutdown() connects to the port while the server closes, which wakes
// the loop at once (measured: ~10 ms instead of ~2 s).
//
// Thread-safety: thread-safe. `render` runs on civetweb's threads, possibly several at
// once, and must be thread-safe; it is never called after Shutdown() returns.
#ifndef MEMLOAD_AGENT_METRICS_SERVER_H_
#define MEMLOAD_AGENT_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "core/sync/mutex.h"

class CivetServer;
class CivetHandler;

namespace memload {
namespace agent {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // Listens on `listen_address` ("HOST:PORT"; port 0 picks a free one). InvalidArgument
  // for a malformed address, and for an IPv6 one where civetweb has no IPv6 (Debian's
  // build); Unavailable when it cannot be bound.
  // Checks `listen_address` as Start does, without binding it (memload-agent
  // --check-config): the port, or InvalidArgument.
  static absl::StatusOr<int> CheckAddress(const std::string& listen_address);

  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen_address,
                                                              Render render);
  ~MetricsServer();  // Shutdown().
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound address with the real port ("127.0.0.1:43121").
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Stops serving; in-flight scrapes finish first. Idempotent.
  void Shutdown();

 private:
  MetricsServer() = default;

  std::string host_;
  std::string address_;
  int port_ = 0;
  std::unique_ptr<CivetHandler> handler_;
  Mutex mutex_;
  std::unique_ptr<CivetServer> server_ ABSL_GUARDED_BY(mutex_);  // null once shut down.
};

}  // namespace agent
}  // namespace memload

#endif  // MEMLOAD_AGENT_METRICS_SERVER_H_

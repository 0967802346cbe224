// A port on 127.0.0.1 that was free a moment ago: bound to port 0, read back, closed.
// Nothing listens there afterwards (an "unreachable agent"), and a server the test starts
// next can usually take it (Prometheus's --web.listen-address). Thread-safe.
#ifndef MEMLOAD_TESTS_TESTING_LOOPBACK_PORT_H_
#define MEMLOAD_TESTS_TESTING_LOOPBACK_PORT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace memload {
namespace testing {

inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace testing
}  // namespace memload

#endif  // MEMLOAD_TESTS_TESTING_LOOPBACK_PORT_H_

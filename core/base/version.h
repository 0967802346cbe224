// The memload version, reported by agents (NodeInfo.version) and `memloadctl --version`.
#ifndef MEMLOAD_CORE_BASE_VERSION_H_
#define MEMLOAD_CORE_BASE_VERSION_H_

namespace memload {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace memload

#endif  // MEMLOAD_CORE_BASE_VERSION_H_

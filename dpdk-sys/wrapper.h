/* The DPDK headers sluice binds to; bindgen reads this file, the allowlist in build.rs picks the items. */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>

/* rte_errno is a per-lcore thread-local macro that bindgen cannot see; shim.c reads it. */
int sluice_rte_errno(void);

/* Flag macros built with RTE_BIT64(), which bindgen cannot evaluate; shim.c defines them. */
extern const uint64_t sluice_eth_rss_ip;
extern const uint64_t sluice_eth_rss_tcp;
extern const uint64_t sluice_eth_rss_udp;
extern const uint64_t sluice_eth_rx_offload_ipv4_cksum;
extern const uint64_t sluice_eth_rx_offload_tcp_cksum;
extern const uint64_t sluice_eth_rx_offload_udp_cksum;
extern const uint64_t sluice_eth_tx_offload_ipv4_cksum;
extern const uint64_t sluice_eth_tx_offload_tcp_cksum;
extern const uint64_t sluice_eth_tx_offload_udp_cksum;
extern const uint64_t sluice_eth_tx_offload_mbuf_fast_free;
extern const uint64_t sluice_mbuf_f_tx_ipv4;
extern const uint64_t sluice_mbuf_f_tx_ipv6;
extern const uint64_t sluice_mbuf_f_tx_ip_cksum;
extern const uint64_t sluice_mbuf_f_tx_tcp_cksum;
extern const uint64_t sluice_mbuf_f_tx_udp_cksum;
extern const uint64_t sluice_mbuf_f_rx_ip_cksum_bad;
extern const uint64_t sluice_mbuf_f_rx_ip_cksum_mask;
extern const uint64_t sluice_mbuf_f_rx_ip_cksum_good;
extern const uint64_t sluice_mbuf_f_rx_l4_cksum_bad;
extern const uint64_t sluice_mbuf_f_rx_rss_hash;

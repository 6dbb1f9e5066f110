/* C shims for DPDK items that are macros rather than functions. */
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

int sluice_rte_errno(void)
{
	return rte_errno;
}

/* Flag macros built with RTE_BIT64(), exported as constants for bindgen. */
const uint64_t sluice_eth_rss_ip = RTE_ETH_RSS_IP;
const uint64_t sluice_eth_rss_tcp = RTE_ETH_RSS_TCP;
const uint64_t sluice_eth_rss_udp = RTE_ETH_RSS_UDP;
const uint64_t sluice_eth_rx_offload_ipv4_cksum = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
const uint64_t sluice_eth_rx_offload_tcp_cksum = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
const uint64_t sluice_eth_rx_offload_udp_cksum = RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
const uint64_t sluice_eth_tx_offload_ipv4_cksum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
const uint64_t sluice_eth_tx_offload_tcp_cksum = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
const uint64_t sluice_eth_tx_offload_udp_cksum = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
const uint64_t sluice_eth_tx_offload_mbuf_fast_free = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
const uint64_t sluice_mbuf_f_tx_ipv4 = RTE_MBUF_F_TX_IPV4;
const uint64_t sluice_mbuf_f_tx_ipv6 = RTE_MBUF_F_TX_IPV6;
const uint64_t sluice_mbuf_f_tx_ip_cksum = RTE_MBUF_F_TX_IP_CKSUM;
const uint64_t sluice_mbuf_f_tx_tcp_cksum = RTE_MBUF_F_TX_TCP_CKSUM;
const uint64_t sluice_mbuf_f_tx_udp_cksum = RTE_MBUF_F_TX_UDP_CKSUM;
const uint64_t sluice_mbuf_f_rx_ip_cksum_bad = RTE_MBUF_F_RX_IP_CKSUM_BAD;
const uint64_t sluice_mbuf_f_rx_ip_cksum_mask = RTE_MBUF_F_RX_IP_CKSUM_MASK;
const uint64_t sluice_mbuf_f_rx_ip_cksum_good = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
const uint64_t sluice_mbuf_f_rx_l4_cksum_bad = RTE_MBUF_F_RX_L4_CKSUM_BAD;
const uint64_t sluice_mbuf_f_rx_rss_hash = RTE_MBUF_F_RX_RSS_HASH;

"""Link type names (tcpdump.org's LINKTYPE_ registry, the numbers in pcap and pcapng files), for messages that
say what a file holds rather than only its number."""

from __future__ import annotations

_NAMES = {
    0: "NULL", 1: "ETHERNET", 3: "AX25", 6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP", 9: "PPP", 10: "FDDI",
    12: "RAW (BSD)", 14: "RAW (BSD)", 50: "PPP_HDLC", 51: "PPP_ETHER", 100: "ATM_RFC1483", 101: "RAW",
    104: "C_HDLC", 105: "IEEE802_11", 107: "FRELAY", 108: "LOOP", 113: "LINUX_SLL", 114: "LTALK", 117: "PFLOG",
    119: "IEEE802_11_PRISM", 122: "IP_OVER_FC", 123: "SUNATM", 127: "IEEE802_11_RADIOTAP", 129: "ARCNET_LINUX",
    138: "APPLE_IP_OVER_IEEE1394", 139: "MTP2_WITH_PHDR", 140: "MTP2", 141: "MTP3", 142: "SCCP", 143: "DOCSIS",
    144: "LINUX_IRDA", 163: "IEEE802_11_AVS", 165: "BACNET_MS_TP", 166: "PPP_PPPD", 169: "GPRS_LLC",
    177: "LINUX_LAPD", 182: "MFR", 187: "BLUETOOTH_HCI_H4", 189: "USB_LINUX", 192: "PPI",
    195: "IEEE802_15_4_WITHFCS", 197: "ERF", 201: "BLUETOOTH_HCI_H4_WITH_PHDR", 202: "AX25_KISS", 203: "LAPD",
    204: "PPP_WITH_DIR", 205: "C_HDLC_WITH_DIR", 206: "FRELAY_WITH_DIR", 209: "IPMB_LINUX", 215:
    "IEEE802_15_4_NONASK_PHY", 220: "USB_LINUX_MMAPPED", 226: "IPNET", 227: "CAN_SOCKETCAN", 228: "IPV4",
    229: "IPV6", 230: "IEEE802_15_4_NOFCS", 231: "DBUS", 239: "NFLOG", 240: "NETANALYZER", 242: "IPOIB",
    243: "MPEG_2_TS", 247: "INFINIBAND", 248: "SCTP", 249: "USBPCAP", 251: "BLUETOOTH_LE_LL", 253: "NETLINK",
    254: "BLUETOOTH_LINUX_MONITOR", 256: "BLUETOOTH_LE_LL_WITH_PHDR", 258: "PKTAP", 266: "USB_DARWIN",
    271: "VSOCK", 272: "NORDIC_BLE", 274: "ETHERNET_MPACKET", 276: "LINUX_SLL2", 281: "DSA_TAG_BRCM",
    282: "DSA_TAG_BRCM_PREPEND", 283: "IEEE802_15_4_TAP", 284: "DSA_TAG_DSA", 285: "DSA_TAG_EDSA",
}
_NAMES.update({147 + i: f"USER{i}" for i in range(16)})


def name(linktype: int) -> str:
    """`LINUX_SLL (113)`, or the number alone for one the registry table here does not know."""
    known = _NAMES.get(linktype)
    return f"{known} ({linktype})" if known else f"link type {linktype}"

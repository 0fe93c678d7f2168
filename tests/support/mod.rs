pub mod cluster;
pub mod pcap;

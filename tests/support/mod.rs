pub mod broker_process;
pub mod cluster;
pub mod pcap;
pub mod store_child;

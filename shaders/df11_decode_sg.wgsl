enable subgroups;
// DFloat11 decode (df11_decode_body.wgsl) with the span prefix sum by subgroup operations
// (df11_scan_sg.wgsl, one barrier instead of 2 log2(WG) + 1), compiled only where the device has `subgroups`.
// #include df11_scan_sg
// #include df11_decode_body

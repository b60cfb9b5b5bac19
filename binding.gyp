{
  "targets": [
    {
      "target_name": "weft_native",
      "sources": ["native/addon.cc", "native/netlink.cc", "native/tun.cc", "native/holder.cc", "native/notify.cc", "native/checksum.cc", "native/offload.cc", "native/coalesce.cc", "native/table.cc", "native/ipv4.cc", "native/ipv6.cc", "native/udp-batch.cc", "native/syscalls.cc", "native/forwarder.cc", "native/tun-to-udp.cc", "native/udp-to-tun.cc", "native/binding-args.cc", "native/forwarder-binding.cc", "native/scripted-syscalls.cc", "native/test-binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "-fstack-clash-protection"],
      "ldflags": ["-Wl,-z,relro,-z,now"]
    }
  ]
}

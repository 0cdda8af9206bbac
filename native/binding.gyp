{
  "targets": [
    {
      "target_name": "tsray_native",
      "sources": ["tsray_native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O2"] }
    }
  ]
}

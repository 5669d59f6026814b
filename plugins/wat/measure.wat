;; measure: a Bulkhead plugin written by hand in WebAssembly text, to show that the plugin
;; contract (DESIGN.md section 2) needs no SDK and no particular language.
;; It reads the whole task document from stdin, writes {"input_bytes": N} to stdout, logs one
;; structured record on stderr, and exits 0 by returning from _start.
;; Built by scripts/build-plugins.sh with `wat2wasm` (Debian package wabt).
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Memory layout:
  ;;   0..8      iovec                     8..12   bytes read / written
  ;;   16..31    "{\"input_bytes\":"       32..80  the output line, built backwards from 80
  ;;   80..82    "}\n"                     96..    the log line
  ;;   1024..    read buffer (64512 bytes)
  (memory (export "memory") 1)
  (data (i32.const 16) "{\22input_bytes\22:")
  (data (i32.const 80) "}\0a")
  (data (i32.const 96) "{\22level\22:\22info\22,\22msg\22:\22measured the task document\22}\0a")

  ;; Writes all of [ptr, ptr+len) to fd (fd_write may write less than asked). Exits 1 on error.
  (func $write_all (param $fd i32) (param $ptr i32) (param $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (if (i32.ne (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
                    (i32.const 0))
          (then (call $proc_exit (i32.const 1))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more))))

  ;; Reads stdin to its end; returns the number of bytes. Exits 1 on a read error.
  (func $read_all (result i32)
    (local $total i32)
    (local $n i32)
    (block $eof
      (loop $more
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 64512))
        (if (i32.ne (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
                    (i32.const 0))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $total (i32.add (local.get $total) (local.get $n)))
        (br $more)))
    (local.get $total))

;; Writes the decimal digits of $v so that they end at offset 80; returns where they start.
  (func $digits (param $v i32) (result i32)
    (local $pos i32)
    (local.set $pos (i32.const 80))
    (loop $next
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos)
        (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $next (i32.ne (local.get $v) (i32.const 0))))
    (local.get $pos))

  (func (export "_start")
    (local $start i32)
    ;; digits end at 80, "}\n" follows; put the 15-byte prefix right before the digits.
    (local.set $start (i32.sub (call $digits (call $read_all)) (i32.const 15)))
    (memory.copy (local.get $start) (i32.const 16) (i32.const 15))
    (call $write_all (i32.const 1) (local.get $start) (i32.sub (i32.const 82) (local.get $start)))
    (call $write_all (i32.const 2) (i32.const 96) (i32.const 52))))

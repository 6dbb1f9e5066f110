-- sluice workloads for Pktgen-DPDK: many TCP (or UDP) flows from clients to the VIPs,
-- 64-byte frames, IMIX, or SYN-only; the same workloads as bench/trex/sluice_profile.py.
-- Run as shown in bench/pktgen/README.md (tested with pktgen 23.03.0 on DPDK 22.11).
--
-- flows64 and syn are sent from a pcap this script writes beforehand, outside Pktgen:
--   SLUICE_WORKLOAD=syn SLUICE_FLOWS=2000000 lua5.4 bench/pktgen/sluice.lua write-pcap /tmp/syn.pcap
-- and Pktgen loads with `-s 0:/tmp/syn.pcap`. Pktgen's range mode cannot make them: it builds
-- one packet per mbuf of its Range TX pool when sending starts (24,576 per queue in 23.03) and
-- resends those, so no more than that many distinct flows leave a queue, whatever the ranges.
-- A pcap holds one packet per flow: flows64 replays it in a loop, syn sends each packet once
-- (`set <port> count` = its packets), so every SYN is a new flow.
--
-- Tunables are environment variables (see bench/pktgen/README.md):
--   SLUICE_WORKLOAD  flows64 | imix | syn          (default flows64)
--   SLUICE_PCAP      the pcap given to Pktgen's -s (flows64, syn; required inside Pktgen)
--   SLUICE_FLOWS     distinct 5-tuples written by write-pcap (default 100000)
--   SLUICE_VIP       first VIP                       (default 198.51.100.10)
--   SLUICE_VIPS      number of consecutive VIPs      (default 1)
--   SLUICE_DPORT     service port                    (default 80)
--   SLUICE_PROTO     tcp | udp                       (default tcp; syn needs tcp)
--   SLUICE_DST_MAC   sluice's MAC on the client link (required on real NICs)
--   SLUICE_PORT      Pktgen port sending to sluice   (default 0)
--   SLUICE_RATE      percent of line rate            (default 100)
--   SLUICE_SECONDS   how long to send; 0 = configure only and leave it to the operator
--   SLUICE_ENCAP     ipip | gue | none: what sluice adds to each frame (default ipip); imix
--                    shortens its largest frame by that much so it fits sluice's MTU
--
-- Outside Pktgen (no `pktgen` global) the script runs against a recorder that prints every
-- call instead: `lua5.4 bench/pktgen/sluice.lua` shows exactly what it would configure.
-- Commands for the operator to type are printed as "sluice.lua: at the Pktgen prompt: CMD";
-- bench/check-profiles.sh checks them, and every Lua call, against bench/pktgen/api.txt.

local env = function(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local cfg = {
  workload = env("SLUICE_WORKLOAD", "flows64"),
  pcap = env("SLUICE_PCAP", nil),
  flows = tonumber(env("SLUICE_FLOWS", "100000")),
  vip = env("SLUICE_VIP", "198.51.100.10"),
  vips = tonumber(env("SLUICE_VIPS", "1")),
  dport = tonumber(env("SLUICE_DPORT", "80")),
  proto = env("SLUICE_PROTO", "tcp"),
  dst_mac = env("SLUICE_DST_MAC", "02:00:00:00:00:10"),
  port = env("SLUICE_PORT", "0"),
  rate = tonumber(env("SLUICE_RATE", "100")),
  seconds = tonumber(env("SLUICE_SECONDS", "0")),
  encap = env("SLUICE_ENCAP", "ipip"),
}

-- Clients: 203.0.113.1-251, source ports from 1024.
local CLIENT_NET = "203.0.113."
local CLIENT_HOSTS = 251
local SPORT_MIN = 1024
local SRC_MAC = "02:00:00:00:00:c1"
-- IMIX (Simple IMIX, 7:4:1) frame sizes, FCS included as Pktgen counts them. The 1518-byte
-- frame carries a 1500-byte IP packet; sluice's IPIP (+20 bytes) or GUE (+28) makes it larger
-- than an MTU of 1500, and sluice drops it (mtu_exceeded). memif and many NICs cannot raise the
-- MTU, so the largest frame is shortened by the encapsulation instead (SLUICE_ENCAP).
local IMIX = { { 64, 7 }, { 594, 4 }, { 1518, 1 } }
local ENCAP = { ipip = 20, gue = 28, none = 0 }
local FCS = 4
local TCP_SYN, TCP_ACK = 0x02, 0x10

local function fail(msg)
  error("sluice.lua: " .. msg, 0)
end

local function ip_num(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then fail("not an IPv4 address: " .. ip) end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

local function ip_str(v)
  return string.format("%d.%d.%d.%d", (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)
end

local function ip_add(ip, n)
  return ip_str(ip_num(ip) + n)
end

local function mac_bytes(mac)
  local b = { mac:match("^(%x%x):(%x%x):(%x%x):(%x%x):(%x%x):(%x%x)$") }
  if #b ~= 6 then fail("not a MAC address: " .. mac) end
  for i = 1, 6 do b[i] = string.char(tonumber(b[i], 16)) end
  return table.concat(b)
end

local function validate(c)
  local ok = { flows64 = true, imix = true, syn = true }
  if not ok[c.workload] then fail("SLUICE_WORKLOAD must be flows64, imix or syn, not " .. c.workload) end
  if c.proto ~= "tcp" and c.proto ~= "udp" then fail("SLUICE_PROTO must be tcp or udp") end
  if c.workload == "syn" and c.proto ~= "tcp" then fail("the syn workload needs SLUICE_PROTO=tcp") end
  if not c.flows or c.flows < 1 or c.flows ~= math.floor(c.flows) then
    fail("SLUICE_FLOWS must be a positive integer")
  end
  if not c.vips or c.vips < 1 or c.vips > 254 then fail("SLUICE_VIPS must be 1..254") end
  if not c.rate or c.rate <= 0 or c.rate > 100 then fail("SLUICE_RATE must be in (0, 100]") end
  if not c.dport or c.dport < 1 or c.dport > 65535 then fail("SLUICE_DPORT must be 1..65535") end
  if not c.seconds or c.seconds < 0 then fail("SLUICE_SECONDS must be 0 or more") end
  if not ENCAP[c.encap] then fail("SLUICE_ENCAP must be ipip, gue or none (l2-dsr)") end
  mac_bytes(c.dst_mac)
  ip_num(c.vip)
end

-- ---------------------------------------------------------------------------------------
-- The pcap of flows64/syn: packet i is flow i, VIP i mod vips, then client, then source port,
-- so consecutive packets spread over VIPs and clients. Exactly SLUICE_FLOWS distinct 5-tuples.

local function csum_fold(s)
  while s > 0xffff do s = (s & 0xffff) + (s >> 16) end
  return (~s) & 0xffff
end

local function write_pcap(c, path)
  if c.workload == "imix" then fail("write-pcap is for flows64 and syn; imix uses Pktgen's sequence mode") end
  local max = CLIENT_HOSTS * (65535 - SPORT_MIN + 1) * c.vips
  if c.flows > max then fail(string.format("at most %d flows with %d VIPs", max, c.vips)) end
  local f = assert(io.open(path, "wb"))
  -- Classic pcap, microseconds, Ethernet.
  f:write(string.pack("<I4I2I2i4I4I4I4", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
  local eth = mac_bytes(c.dst_mac) .. mac_bytes(SRC_MAC) .. "\8\0"
  local tcp = c.proto == "tcp"
  local l4_len = tcp and 20 or 8
  local ip_len = 20 + l4_len
  local frame = 64 - FCS
  local pad = string.rep("\0", frame - 14 - ip_len)
  local proto = tcp and 6 or 17
  local flags = c.workload == "syn" and TCP_SYN or TCP_ACK
  local client0, vip0 = ip_num(CLIENT_NET .. "1"), ip_num(c.vip)
  local rec_hdr = string.pack("<I4I4I4I4", 0, 0, frame, frame)
  local buf, n = {}, 0
  for i = 0, c.flows - 1 do
    local dst = vip0 + i % c.vips
    local rest = i // c.vips
    local src = client0 + rest % CLIENT_HOSTS
    local sport = SPORT_MIN + rest // CLIENT_HOSTS
    local addr_sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff)
    -- IPv4: version/IHL 0x45, total length, id 0, DF, TTL 64, protocol.
    local ip_ck = csum_fold(0x4500 + ip_len + 0x4000 + (64 << 8) + proto + addr_sum)
    local ip = string.pack(">I2I2I2I2BBI2I4I4", 0x4500, ip_len, 0, 0x4000, 64, proto, ip_ck, src, dst)
    local l4
    if tcp then
      -- seq = flow number, ack 0 (SYN) or 1, data offset 5, window 65535.
      local seq = i & 0xffffffff
      local ack = flags == TCP_ACK and 1 or 0
      local hdr_word = (5 << 12) | flags
      local ck = csum_fold(addr_sum + proto + l4_len + sport + c.dport + (seq >> 16) + (seq & 0xffff)
        + ack + hdr_word + 0xffff)
      l4 = string.pack(">I2I2I4I4I2I2I2I2", sport, c.dport, seq, ack, hdr_word, 0xffff, ck, 0)
    else
      local ck = csum_fold(addr_sum + proto + l4_len + sport + c.dport + l4_len)
      if ck == 0 then ck = 0xffff end
      l4 = string.pack(">I2I2I2I2", sport, c.dport, l4_len, ck)
    end
    n = n + 1
    buf[n] = rec_hdr .. eth .. ip .. l4 .. pad
    if n == 4096 then
      f:write(table.concat(buf))
      buf, n = {}, 0
    end
  end
  f:write(table.concat(buf, "", 1, n))
  f:close()
end

-- What a pcap really holds: packets, distinct 5-tuples, SYN-only packets, frame sizes.
local function read_pcap(path)
  local f = io.open(path, "rb")
  if not f then fail("cannot open SLUICE_PCAP " .. path) end
  local data = f:read("a")
  f:close()
  if #data < 24 then fail(path .. ": not a pcap") end
  local magic = string.unpack("<I4", data)
  local e
  if magic == 0xa1b2c3d4 or magic == 0xa1b23c4d then e = "<"
  elseif magic == 0xd4c3b2a1 or magic == 0x4d3cb2a1 then e = ">"
  else fail(path .. ": not a pcap (magic " .. string.format("%08x", magic) .. ")") end
  if string.unpack(e .. "I4", data, 21) ~= 1 then fail(path .. ": not Ethernet") end
  local st = { packets = 0, flows = 0, syn = 0, other = 0, min = math.huge, max = 0, bytes = 0 }
  local seen = {}
  local pos = 25
  while pos + 16 <= #data + 1 do
    local incl = string.unpack(e .. "I4", data, pos + 8)
    local p = pos + 16
    pos = p + incl
    if pos > #data + 1 then fail(path .. ": truncated record") end
    st.packets = st.packets + 1
    st.bytes = st.bytes + incl
    if incl < st.min then st.min = incl end
    if incl > st.max then st.max = incl end
    local etype = incl >= 34 and string.unpack(">I2", data, p + 12)
    local ihl = etype == 0x0800 and (string.byte(data, p + 14) & 15) * 4
    local proto = ihl and string.byte(data, p + 23)
    if ihl and (proto == 6 or proto == 17) and incl >= 14 + ihl + 4 then
      -- addresses, ports and protocol, as bytes
      local key = data:sub(p + 26, p + 33) .. data:sub(p + 14 + ihl, p + 17 + ihl) .. string.char(proto)
      if not seen[key] then
        seen[key] = true
        st.flows = st.flows + 1
      end
      if proto == 6 and incl >= 14 + ihl + 14 and string.byte(data, p + 14 + ihl + 13) == TCP_SYN then
        st.syn = st.syn + 1
      end
    else
      st.other = st.other + 1
    end
  end
  return st
end

-- ---------------------------------------------------------------------------------------
-- A stand-in for Pktgen's Lua API outside Pktgen: prints each call, returns plausible stats.
local function recorder()
  local function show(v)
    if type(v) == "string" then return string.format("%q", v) end
    if type(v) == "table" then
      local parts = {}
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. show(v[k]) end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    return tostring(v)
  end
  local function rec(prefix)
    return setmetatable({}, {
      __index = function(_, name)
        return function(...)
          local args = {}
          for i = 1, select("#", ...) do args[i] = show((select(i, ...))) end
          print(prefix .. name .. "(" .. table.concat(args, ", ") .. ")")
          if name == "portStats" then
            return { [0] = { opackets = 0, ipackets = 0, oerrors = 0, ierrors = 0, imissed = 0 }, n = 1 }
          elseif name == "isSending" then
            return { [0] = "n", n = 1 }
          end
        end
      end,
    })
  end
  return rec("pktgen.")
end

local pg = rawget(_G, "pktgen")
local dry_run = pg == nil
if dry_run then pg = recorder() end

local function prompt(cmd)
  print("sluice.lua: at the Pktgen prompt: " .. cmd)
end

-- IMIX: Pktgen's sequence mode, 12 packets in the 7:4:1 mix, each its own client and port
-- (Pktgen cannot vary addresses within a sequence; TRex's IMIX keeps many flows).
local function sequence_imix(c)
  local p = c.port
  local n = 0
  local sizes = {}
  for i, sz in ipairs(IMIX) do
    local size = i == #IMIX and sz[1] - ENCAP[c.encap] or sz[1]
    sizes[#sizes + 1] = string.format("%dx%d", sz[2], size)
    for _ = 1, sz[2] do
      pg.seqTable(n, p, {
        eth_dst_addr = c.dst_mac,
        eth_src_addr = SRC_MAC,
        ip_dst_addr = ip_add(c.vip, n % c.vips),
        ip_src_addr = CLIENT_NET .. tostring(1 + n) .. "/24",
        sport = SPORT_MIN + n,
        dport = c.dport,
        ethType = "ipv4",
        ipProto = c.proto,
        vlanid = 1,
        pktSize = size,
        cos = 0,
        tos = 0,
      })
      n = n + 1
    end
  end
  pg.set(p, "seq_cnt", n)
  print(string.format("sluice.lua: imix frames %s bytes (with FCS; the largest is 1518 less %d for %s)",
    table.concat(sizes, " "), ENCAP[c.encap], c.encap))
  return n
end

-- The pcap workloads: check that the file holds what the workload claims, print what it holds.
local function pcap_flows(c)
  if not c.pcap then
    fail(c.workload .. " sends from a pcap: write one with `SLUICE_WORKLOAD=" .. c.workload
      .. " SLUICE_FLOWS=N lua5.4 bench/pktgen/sluice.lua write-pcap FILE`, start Pktgen with"
      .. " `-s " .. c.port .. ":FILE` and set SLUICE_PCAP=FILE")
  end
  local st = read_pcap(c.pcap)
  print(string.format("sluice.lua: pcap %s: packets=%d flows=%d syn_only=%d frames=%d..%d bytes (without FCS)",
    c.pcap, st.packets, st.flows, st.syn, st.min, st.max))
  if st.packets == 0 then fail(c.pcap .. ": no packets") end
  if c.workload == "syn" then
    if st.syn ~= st.packets then
      fail(string.format("%s: %d of %d packets are not SYN-only; write it with SLUICE_WORKLOAD=syn",
        c.pcap, st.packets - st.syn, st.packets))
    end
    if st.flows ~= st.packets then
      print(string.format("sluice.lua: %s repeats flows: only %d of the %d SYNs open a new flow",
        c.pcap, st.flows, st.packets))
    end
  elseif st.syn > 0 then
    print(string.format("sluice.lua: %s holds %d SYN-only packets: this is a syn pcap", c.pcap, st.syn))
  end
  pg.pcap(c.port, "on")
  if c.workload == "syn" then
    -- Each packet once: a second pass would only hit the flows of the first.
    pg.set(c.port, "count", st.packets)
  else
    pg.set(c.port, "count", 0)
  end
  return st
end

-- Wall-clock seconds, 10 ms resolution (Linux /proc/uptime; os.time's whole seconds elsewhere).
local function now()
  local f = io.open("/proc/uptime", "r")
  local t = f and f:read("n")
  if f then f:close() end
  return t or os.time()
end

local function sending(p)
  local s = pg.isSending(p)
  return s and (s[tonumber(p)] or s[p]) == "y"
end

-- Pktgen's portStats(p, "port") is the snapshot its timer takes once a second; after the
-- port stops, wait until two snapshots more than a second apart agree: those are final.
local function final_stats(p)
  local function get()
    local st = pg.portStats(p, "port")
    return st and (st[tonumber(p)] or st[p]) or {}
  end
  local last = get()
  for _ = 1, 10 do
    pg.delay(1100)
    local now = get()
    if now.opackets == last.opackets and now.ipackets == last.ipackets then return now, true end
    last = now
  end
  return last, false
end

local function run(c)
  validate(c)
  local p = c.port
  pg.stop(p)
  pg.clr()
  pg.set(p, "rate", c.rate)
  local flows, st
  if c.workload == "imix" then
    flows = sequence_imix(c)
  else
    st = pcap_flows(c)
    flows = st.flows
  end
  print(string.format("sluice.lua: workload=%s proto=%s flows=%d vips=%s..%s dport=%d rate=%s%%%s",
    c.workload, c.proto, flows, c.vip, ip_add(c.vip, c.vips - 1), c.dport, tostring(c.rate),
    c.workload == "syn" and string.format(" packets=%d (each sent once)", st.packets) or ""))
  if c.seconds <= 0 then
    print("sluice.lua: configured; to send:")
    prompt("start " .. p)
    return
  end
  pg.start(p)
  local t0 = now()
  -- syn ends by itself once every packet went out; the others run for SLUICE_SECONDS of wall
  -- time (a loop of pktgen.delay(100) drifts: 100 of them took 12.4 s on a busy host).
  while now() - t0 < c.seconds do
    pg.delay(100)
    if c.workload == "syn" and now() - t0 >= 1 and not sending(p) then break end
  end
  pg.stop(p)
  local secs = now() - t0
  local s, final = final_stats(p)
  local tx = s.opackets or 0
  if c.workload == "syn" then
    if tx >= st.packets then
      print(string.format("sluice.lua: syn sent all %d SYNs; stopped %.2f s after start (checked every 0.1 s)",
        st.packets, secs))
    else
      print(string.format("sluice.lua: syn stopped after %.2f s with %d of its %d SYNs sent",
        secs, tx, st.packets))
    end
  end
  if not final then print("sluice.lua: port statistics still changing 10 s after stop") end
  -- One line to set beside sluice's rx/tx counters for the same interval; seconds is the
  -- wall-clock time from start to stop.
  print(string.format(
    "sluice.lua: result workload=%s seconds=%.2f tx_packets=%d tx_pps=%.0f rx_packets=%d ierrors=%d imissed=%d oerrors=%d",
    c.workload, secs, tx, secs > 0 and tx / secs or 0, s.ipackets or 0, s.ierrors or 0, s.imissed or 0,
    s.oerrors or 0))
end

local script_args = rawget(_G, "arg")
if dry_run and script_args and script_args[1] == "write-pcap" then
  if not script_args[2] then fail("usage: lua5.4 sluice.lua write-pcap FILE") end
  validate(cfg)
  write_pcap(cfg, script_args[2])
  local st = read_pcap(script_args[2])
  print(string.format("sluice.lua: wrote %s: workload=%s packets=%d flows=%d syn_only=%d",
    script_args[2], cfg.workload, st.packets, st.flows, st.syn))
  return
end

run(cfg)
if dry_run then print("sluice.lua: dry run (no pktgen global), nothing was sent") end

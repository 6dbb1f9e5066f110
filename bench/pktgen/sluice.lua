-- sluice workloads for Pktgen-DPDK: many TCP (or UDP) flows from clients to the VIPs,
-- 64-byte frames, IMIX, or SYN-only; the same workloads as bench/trex/sluice_profile.py.
--
-- Run inside Pktgen:  pktgen <EAL args> -- -P -m "[2:3].0" -f bench/pktgen/sluice.lua
-- Tunables are environment variables (see bench/pktgen/README.md):
--   SLUICE_WORKLOAD  flows64 | imix | syn          (default flows64)
--   SLUICE_FLOWS     distinct 5-tuples, flows64/syn  (default 100000)
--   SLUICE_VIP       first VIP                       (default 198.51.100.10)
--   SLUICE_VIPS      number of consecutive VIPs      (default 1)
--   SLUICE_DPORT     service port                    (default 80)
--   SLUICE_PROTO     tcp | udp                       (default tcp; syn needs tcp)
--   SLUICE_DST_MAC   sluice's MAC on the client link (required on real NICs)
--   SLUICE_PORT      Pktgen port sending to sluice   (default 0)
--   SLUICE_RATE      percent of line rate            (default 100)
--   SLUICE_SECONDS   how long to send; 0 = configure only and leave it to the operator
--
-- Outside Pktgen (no `pktgen` global) the script runs against a recorder that prints every
-- call instead: `lua5.4 bench/pktgen/sluice.lua` shows exactly what it would configure.

local env = function(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local cfg = {
  workload = env("SLUICE_WORKLOAD", "flows64"),
  flows = tonumber(env("SLUICE_FLOWS", "100000")),
  vip = env("SLUICE_VIP", "198.51.100.10"),
  vips = tonumber(env("SLUICE_VIPS", "1")),
  dport = tonumber(env("SLUICE_DPORT", "80")),
  proto = env("SLUICE_PROTO", "tcp"),
  dst_mac = env("SLUICE_DST_MAC", "02:00:00:00:00:10"),
  port = env("SLUICE_PORT", "0"),
  rate = tonumber(env("SLUICE_RATE", "100")),
  seconds = tonumber(env("SLUICE_SECONDS", "0")),
}

-- Clients: CLIENT_HOSTS addresses (a prime, so the address and port counters of Pktgen's
-- range mode, which all step once per packet, only repeat after hosts x ports packets).
local CLIENT_NET = "203.0.113."
local CLIENT_HOSTS = 251
local SPORT_MIN = 1024
-- IMIX (Simple IMIX, 7:4:1) frame sizes, FCS included as Pktgen counts them.
local IMIX = { { 64, 7 }, { 594, 4 }, { 1518, 1 } }

local function fail(msg)
  error("sluice.lua: " .. msg, 0)
end

local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

local function ip_add(ip, n)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then fail("not an IPv4 address: " .. ip) end
  local v = ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d) + n
  return string.format("%d.%d.%d.%d", (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)
end

-- Source ports so that hosts x ports >= flows and the counters cycle through every pair
-- (ports coprime with the host count and with the VIP count).
local function port_count(flows, vips)
  local ports = math.max(1, math.ceil(flows / CLIENT_HOSTS))
  while gcd(ports, CLIENT_HOSTS) ~= 1 or gcd(ports, vips) ~= 1 do ports = ports + 1 end
  if SPORT_MIN + ports - 1 > 65535 then
    fail(string.format("%d flows need %d source ports per host, more than fit", flows, ports))
  end
  return ports
end

local function validate(c)
  local ok = { flows64 = true, imix = true, syn = true }
  if not ok[c.workload] then fail("SLUICE_WORKLOAD must be flows64, imix or syn, not " .. c.workload) end
  if c.proto ~= "tcp" and c.proto ~= "udp" then fail("SLUICE_PROTO must be tcp or udp") end
  if c.workload == "syn" and c.proto ~= "tcp" then fail("the syn workload needs SLUICE_PROTO=tcp") end
  if not c.flows or c.flows < 1 then fail("SLUICE_FLOWS must be a positive number") end
  if not c.vips or c.vips < 1 or c.vips > 254 then fail("SLUICE_VIPS must be 1..254") end
  if not c.rate or c.rate <= 0 or c.rate > 100 then fail("SLUICE_RATE must be in (0, 100]") end
  if not c.dport or c.dport < 1 or c.dport > 65535 then fail("SLUICE_DPORT must be 1..65535") end
end

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
            return { [0] = { opackets = 0, ipackets = 0, oerrors = 0, ierrors = 0, imissed = 0 } }
          end
        end
      end,
    })
  end
  local p = rec("pktgen.")
  rawset(p, "range", rec("pktgen.range."))
  return p
end

local pg = rawget(_G, "pktgen")
local dry_run = pg == nil
if dry_run then pg = recorder() end

-- TCP flags on Pktgen versions whose Lua API exposes them; the default packet is an ACK,
-- which sluice also treats as a new flow, but SYN-only needs the flag.
local function tcp_syn(port)
  if type(pg.range.tcp_flags) == "function" then
    pg.range.tcp_flags(port, "clr", "all")
    pg.range.tcp_flags(port, "set", "syn")
    return true
  end
  print("sluice.lua: this Pktgen has no Lua call for TCP flags; type at the Pktgen prompt:")
  print("  range " .. port .. " tcp_flags clr all")
  print("  range " .. port .. " tcp_flags set syn")
  return false
end

-- Range mode: every packet steps source address, source port and VIP.
local function range_flows(c, size)
  local p = c.port
  local ports = port_count(c.flows, c.vips)
  local first, last = CLIENT_NET .. "1", CLIENT_NET .. tostring(CLIENT_HOSTS)
  pg.set_proto(p, c.proto)
  pg.range.dst_mac(p, "start", c.dst_mac)
  pg.range.src_ip(p, "start", first)
  pg.range.src_ip(p, "inc", "0.0.0.1")
  pg.range.src_ip(p, "min", first)
  pg.range.src_ip(p, "max", last)
  pg.range.dst_ip(p, "start", c.vip)
  pg.range.dst_ip(p, "inc", c.vips > 1 and "0.0.0.1" or "0.0.0.0")
  pg.range.dst_ip(p, "min", c.vip)
  pg.range.dst_ip(p, "max", ip_add(c.vip, c.vips - 1))
  pg.range.src_port(p, "start", SPORT_MIN)
  pg.range.src_port(p, "inc", 1)
  pg.range.src_port(p, "min", SPORT_MIN)
  pg.range.src_port(p, "max", SPORT_MIN + ports - 1)
  pg.range.dst_port(p, "start", c.dport)
  pg.range.dst_port(p, "inc", 0)
  pg.range.dst_port(p, "min", c.dport)
  pg.range.dst_port(p, "max", c.dport)
  pg.range.pkt_size(p, "start", size)
  pg.range.pkt_size(p, "inc", 0)
  pg.range.pkt_size(p, "min", size)
  pg.range.pkt_size(p, "max", size)
  pg.set_range(p, "on")
  return CLIENT_HOSTS * ports * c.vips
end

-- IMIX: Pktgen's sequence mode, 12 packets in the 7:4:1 mix, each its own client and port
-- (Pktgen cannot vary addresses within a sequence; TRex's IMIX keeps many flows).
local function sequence_imix(c)
  local p = c.port
  local n = 0
  for _, sz in ipairs(IMIX) do
    for _ = 1, sz[2] do
      pg.seqTable(n, p, {
        eth_dst_addr = c.dst_mac,
        eth_src_addr = "02:00:00:00:00:c1",
        ip_dst_addr = ip_add(c.vip, n % c.vips),
        ip_src_addr = CLIENT_NET .. tostring(1 + n) .. "/24",
        sport = SPORT_MIN + n,
        dport = c.dport,
        ethType = "ipv4",
        ipProto = c.proto,
        vlanid = 1,
        pktSize = sz[1],
        cos = 0,
        tos = 0,
      })
      n = n + 1
    end
  end
  pg.set(p, "seq_cnt", n)
  return n
end

local function run(c)
  validate(c)
  local p = c.port
  pg.stop(p)
  pg.clr()
  pg.set(p, "rate", c.rate)
  local flows
  if c.workload == "imix" then
    flows = sequence_imix(c)
  else
    flows = range_flows(c, 64)
    if c.workload == "syn" then tcp_syn(p) end
  end
  print(string.format("sluice.lua: workload=%s proto=%s flows=%d vips=%s..%s dport=%d rate=%s%%",
    c.workload, c.proto, flows, c.vip, ip_add(c.vip, c.vips - 1), c.dport, tostring(c.rate)))
  if c.seconds <= 0 then
    print("sluice.lua: configured; type 'start " .. p .. "' to send")
    return
  end
  pg.start(p)
  pg.delay(c.seconds * 1000)
  pg.stop(p)
  pg.delay(500)
  local st = pg.portStats(p, "port")
  local s = st and (st[tonumber(p)] or st[p]) or {}
  local tx = s.opackets or 0
  -- One line to set beside sluice's rx/tx counters for the same interval.
  print(string.format(
    "sluice.lua: result workload=%s seconds=%d tx_packets=%d tx_pps=%.0f rx_packets=%d ierrors=%d imissed=%d",
    c.workload, c.seconds, tx, tx / c.seconds, s.ipackets or 0, s.ierrors or 0, s.imissed or 0))
end

run(cfg)
if dry_run then print("sluice.lua: dry run (no pktgen global), nothing was sent") end

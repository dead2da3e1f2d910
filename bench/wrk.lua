-- wrk script of scripts/dev bench (bench/bench.py runs it).
--
--   wrk ... -s bench/wrk.lua URL -- static
--   wrk ... -s bench/wrk.lua URL -- warm      (ids in $BENCH_IDS, one per thread)
--   wrk ... -s bench/wrk.lua URL -- stream    (as warm, with Accept: text/event-stream)
--   wrk ... -s bench/wrk.lua URL -- new       (no id: every request a new session)
--
-- The summary goes to stdout as one line, "BENCH_JSON {...}", with the
-- latency distribution at many percentiles for the plot; in new mode also
-- how many new ids named each route (the ".h1" of "<uuid>.h1"; "" for an
-- id without one), to see how a front spreads new sessions.

local ids = {}
local next_thread = 0
local threads = {}

function setup(thread)
    next_thread = next_thread + 1
    thread:set("index", next_thread)
    threads[#threads + 1] = thread
end

local function json_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return string.format("\\u%04x", c:byte())
    end) .. '"'
end

function init(args)
    local mode = args[1] or "static"
    if mode == "static" then
        wrk.method = "GET"
        return
    end
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    if mode == "warm" or mode == "stream" then
        if mode == "stream" then
            wrk.headers["Accept"] = "text/event-stream"
        end
        for id in string.gmatch(os.getenv("BENCH_IDS") or "", "[^,]+") do
            ids[#ids + 1] = id
        end
        local id = ids[((index - 1) % #ids) + 1]
        wrk.body = '{"code":' .. json_string("x += 1; print(x)") ..
                   ',"id":"' .. id .. '"}'
    else
        wrk.body = '{"code":' .. json_string("print(1)") .. '}'
        -- a Lua call per answer: cheap at the rates new sessions reach
        routes = {}
        response = function(status, headers, body)
            local id = body:match('"id":"([^"]*)"')
            if id then
                local route = id:match("%.([%w_-]+)$") or ""
                routes[route] = (routes[route] or 0) + 1
            end
        end
    end
end

local function routes_json()
    local total = {}
    for _, thread in ipairs(threads) do
        for route, n in pairs(thread:get("routes") or {}) do
            total[route] = (total[route] or 0) + n
        end
    end
    local out = {}
    for route, n in pairs(total) do
        out[#out + 1] = json_string(route) .. ":" .. n
    end
    return "{" .. table.concat(out, ",") .. "}"
end

function done(summary, latency, requests)
    local e = summary.errors
    local out = {}
    out[#out + 1] = string.format(
        '"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f}',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.min, latency.mean, latency.max, latency.stdev)
    local ps = {}
    for _, p in ipairs({1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95,
                        97, 98, 99, 99.5, 99.9, 99.99}) do
        ps[#ps + 1] = string.format("[%g,%d]", p, latency:percentile(p))
    end
    out[#out + 1] = '"percentiles_us":[' .. table.concat(ps, ",") .. ']'
    out[#out + 1] = '"routes":' .. routes_json()
    io.write("BENCH_JSON {" .. table.concat(out, ",") .. "}\n")
end

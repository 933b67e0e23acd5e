#!/usr/bin/env python3
"""IOMMU domain share/unshare and VFIO type1 containers, in Python 3 (stdlib only), as
warpspec's `type1` machine sees them, speaking warpspec's `drive` protocol: JSON lines on
stdin/stdout (README.md, "Checking your implementation").

What is implemented (RFCv2 2/7 and 3/7 of the WarpDrive series): IOMMU groups with default
domains and owner-counted shares, page-table domains, kernel DMA-API buffers allocated first
fit in a device's default domain, device DMA translation; VFIO group and device files,
containers, SET_IOMMU, attach and detach (an sdmdev group shares its parent's default
domain, a PCI group joins or creates the container's own domain), MAP_DMA and UNMAP_DMA
(type1v2) with page pinning; and from mdev v7, vendor mdevs in a local domain that pin pages
(pin/unpin, locked_vm counted per distinct page, RLIMIT_MEMLOCK, invalidation on unmap).
Operations that can fail half way keep a copy of the world and put it back, as a kernel
unwinds.

Usage: type1.py [--bug keep-mappings-on-detach]
  --bug keep-mappings-on-detach  detaching an sdmdev group unshares its parent's domain but
                                 leaves the container's mappings in it (user pages stay
                                 reachable by the kernel's device after the process let go)
"""
import copy
import json
import os
import sys

PAGE = 4096
PIN_PAGES_MAX = 512
FIRST_DYNAMIC_DOMAIN = 100
KERNEL_IOVA_BASE = PAGE
MAX_SAFE = 2**53 - 1


class Failure(Exception):
    """An operation fails with an errno (and maybe events); the world is as before."""

    def __init__(self, errno, events=()):
        super().__init__(errno)
        self.errno = errno
        self.events = list(events)


def page_aligned(x):
    return isinstance(x, int) and 0 <= x <= MAX_SAFE and x % PAGE == 0


def safe_int(x):
    return isinstance(x, int) and not isinstance(x, bool) and -MAX_SAFE <= x <= MAX_SAFE


class Group:
    def __init__(self, gid, kind, parent, default_domain):
        self.id = gid
        self.kind = kind
        self.parent = parent
        self.default_domain = default_domain
        self.domain = default_domain
        self.shares = {}  # owner -> count, never 0

    def shared(self):
        return sum(self.shares.values())


class World:
    def __init__(self, topology, bugs):
        self.bugs = bugs
        self.groups = {}
        self.domains = {}  # id -> {iova: target}; a target is a dict in the spec's shape
        self.buffers = {}  # id -> {"id", "group", "iova", "size"}
        for g in topology["pciGroups"]:
            self.groups[g] = Group(g, "pci", None, g)
            self.domains[g] = {}
        for m in topology["mdevGroups"]:
            self.groups[m["group"]] = Group(m["group"], "mdev", m["parent"], None)
        for g in topology.get("vendorGroups", []):
            self.groups[g] = Group(g, "mdev", None, None)
        self.containers = {
            c["id"]: {"id": c["id"], "mm": c["mm"], "iommuSet": False, "groups": [],
                      "domains": [], "localGroups": [], "dmas": [], "vendorPins": {}}
            for c in topology["containers"]
        }
        self.group_fds = {}  # group -> container holding its fd
        self.device_fds = set()
        self.pins = {}  # (mm, vaddr) -> count, MAP_DMA's and vendors' together
        self.memlock = topology.get("memlockPages")  # RLIMIT_MEMLOCK in pages, None: unlimited
        # process -> the process it was forked from (None: a container's opener)
        self.processes = {c["mm"]: None for c in topology["containers"]}

    # ---- the IOMMU core

    def map_pages(self, domain, iova, size, target):
        pages = self.domains[domain]
        if any(iova + off in pages for off in range(0, size, PAGE)):
            raise Failure("EEXIST")
        field = "vaddr" if target["kind"] == "user" else "offset"
        for off in range(0, size, PAGE):
            pages[iova + off] = dict(target, **{field: target[field] + off})

    def unmap_pages(self, domain, iova, size):
        pages = self.domains[domain]
        for off in range(0, size, PAGE):
            pages.pop(iova + off, None)

    def share(self, gid, owner):
        g = self.groups[gid]
        if g.default_domain is None or g.domain != g.default_domain:
            raise Failure("EINVAL")
        g.shares[owner] = g.shares.get(owner, 0) + 1
        return g.domain

    def unshare(self, gid, owner):
        g = self.groups[gid]
        held = g.shares.get(owner, 0)
        if held <= 0 or g.domain is None:
            raise Failure("EINVAL")
        if held == 1:
            del g.shares[owner]
        else:
            g.shares[owner] = held - 1
        return g.domain

    def dma_alloc(self, gid, pages):
        g = self.groups[gid]
        if g.default_domain is None or not safe_int(pages) or pages <= 0:
            raise Failure("EINVAL")
        size = pages * PAGE
        iova = KERNEL_IOVA_BASE
        for b in sorted((b for b in self.buffers.values() if b["group"] == gid),
                        key=lambda b: b["iova"]):
            if iova + size <= b["iova"]:
                break
            iova = max(iova, b["iova"] + b["size"])
        bid = 1
        while bid in self.buffers:
            bid += 1
        try:
            self.map_pages(g.default_domain, iova, size, {"kind": "kernel", "buffer": bid,
                                                          "offset": 0})
        except Failure:
            raise Failure("ENOMEM", [{"warn": "iova-collision", "group": gid, "iova": iova}])
        self.buffers[bid] = {"id": bid, "group": gid, "iova": iova, "size": size}
        return {"iova": iova, "buffer": bid}

    def dma_free(self, gid, iova):
        for b in self.buffers.values():
            if b["group"] == gid and b["iova"] == iova:
                self.unmap_pages(self.groups[gid].default_domain, iova, b["size"])
                del self.buffers[b["id"]]
                return 0
        raise Failure("EINVAL")

    def dma(self, gid, iova):
        g = self.groups[gid]
        domain = g.domain if g.parent is None else self.groups[g.parent].domain
        within = iova % PAGE
        page = self.domains.get(domain, {}).get(iova - within) if domain is not None else None
        if page is None:
            raise Failure("EFAULT", [{"fault": "iommu", "group": gid, "iova": iova}])
        field = "vaddr" if page["kind"] == "user" else "offset"
        return dict(page, **{field: page[field] + within})

    # ---- VFIO and type1

    def container_of(self, gid):
        for c in self.containers.values():
            if gid in c["groups"]:
                return c
        return None

    def replay(self, c, domain):
        for d in c["dmas"]:
            self.map_pages(domain, d["iova"], d["size"],
                           {"kind": "user", "mm": c["mm"], "vaddr": d["vaddr"]})

    def pin(self, mm, vaddrs, delta):
        for va in vaddrs:
            n = self.pins.get((mm, va), 0) + delta
            if n == 0:
                self.pins.pop((mm, va), None)
            else:
                self.pins[(mm, va)] = n

    def locked_vm(self, mm):
        return sum(1 for (m, _) in self.pins if m == mm)

    def fits_memlock(self, mm, vaddrs):
        if self.memlock is None:
            return True
        fresh = {va for va in vaddrs if (mm, va) not in self.pins}
        return self.locked_vm(mm) + len(fresh) <= self.memlock

    @staticmethod
    def pages(dmas):
        return [va for d in dmas for va in range(d["vaddr"], d["vaddr"] + d["size"], PAGE)]

    @staticmethod
    def vaddr_of(c, iova):
        for d in c["dmas"]:
            if d["iova"] <= iova < d["iova"] + d["size"]:
                return d["vaddr"] + iova - d["iova"]
        return None

    def drop_vendor_pins(self, c, keep):
        for iova, n in list(c["vendorPins"].items()):
            if not keep(iova):
                self.pin(c["mm"], [self.vaddr_of(c, iova)] * n, -1)
                del c["vendorPins"][iova]

    def attach_to_iommu(self, c, gid):
        """vfio_iommu_type1_attach_group; the caller restores the world on a Failure."""
        g = self.groups[gid]
        if g.kind == "mdev" and g.parent is None:  # a vendor mdev: the local domain
            c["localGroups"].append(gid)
            return
        first = not c["domains"]
        self.attach_backed(c, gid, g)
        if first:  # the first IOMMU-backed domain pins what was only recorded
            self.pin(c["mm"], self.pages(c["dmas"]), 1)

    def replay_first(self, c):
        if not c["domains"] and not self.fits_memlock(c["mm"], self.pages(c["dmas"])):
            raise Failure("ENOMEM")

    def attach_backed(self, c, gid, g):
        if g.kind == "mdev":
            parent = g.parent
            if any(vd["sharedParent"] == parent for o in self.containers.values()
                   for vd in o["domains"]):
                raise Failure("EBUSY")
            domain = self.share(parent, 1000 + c["id"])
            self.replay_first(c)
            self.replay(c, domain)
            c["domains"].append({"domain": domain, "groups": [gid], "sharedParent": parent})
            return
        own = next((vd for vd in c["domains"] if vd["sharedParent"] is None), None)
        if g.domain != g.default_domain or g.shared() > 0:
            raise Failure("EBUSY")
        if own is not None:
            g.domain = own["domain"]
            own["groups"].append(gid)
            return
        domain = FIRST_DYNAMIC_DOMAIN
        while domain in self.domains:
            domain += 1
        self.domains[domain] = {}
        g.domain = domain
        self.replay_first(c)
        self.replay(c, domain)
        c["domains"].append({"domain": domain, "groups": [gid], "sharedParent": None})

    def detach_from_iommu(self, c, gid):
        if gid in c["localGroups"]:
            c["localGroups"].remove(gid)
            if not c["localGroups"]:  # the local domain goes, and its pins
                self.drop_vendor_pins(c, lambda iova: False)
                if not c["domains"]:
                    c["dmas"] = []
            return
        vd = next(vd for vd in c["domains"] if gid in vd["groups"])
        if vd["sharedParent"] is not None:
            if "keep-mappings-on-detach" not in self.bugs:
                for d in c["dmas"]:
                    self.unmap_pages(vd["domain"], d["iova"], d["size"])
            self.unshare(vd["sharedParent"], 1000 + c["id"])
            c["domains"].remove(vd)
        else:
            g = self.groups[gid]
            g.domain = g.default_domain
            vd["groups"].remove(gid)
            if not vd["groups"]:
                del self.domains[vd["domain"]]
                c["domains"].remove(vd)
        if not c["domains"]:  # recorded only while the local domain stays
            self.pin(c["mm"], self.pages(c["dmas"]), -1)
            if not c["localGroups"]:
                c["dmas"] = []

    def open_group(self, c, gid):
        if gid in self.group_fds:
            raise Failure("EBUSY")
        self.group_fds[gid] = c["id"]
        return 0

    def close_group(self, c, gid):
        if self.group_fds.get(gid) != c["id"]:
            raise Failure("EINVAL")
        if gid in self.device_fds:
            raise Failure("EBUSY")
        if gid in c["groups"]:
            self.detach(c, gid)
        del self.group_fds[gid]
        return 0

    def get_device_fd(self, c, gid):
        if self.group_fds.get(gid) != c["id"]:
            raise Failure("EINVAL")
        if gid not in c["groups"] or not c["iommuSet"]:
            raise Failure("EINVAL")
        if gid in self.device_fds:
            raise Failure("EBUSY")
        self.device_fds.add(gid)
        return 0

    def close_device_fd(self, c, gid):
        if self.group_fds.get(gid) != c["id"] or gid not in self.device_fds:
            raise Failure("EINVAL")
        self.device_fds.remove(gid)
        return 0

    def attach(self, c, gid):
        if self.group_fds.get(gid) != c["id"] or self.container_of(gid) is not None:
            raise Failure("EINVAL")
        if c["iommuSet"]:
            self.attach_to_iommu(c, gid)
        c["groups"].append(gid)
        return 0

    def set_iommu(self, c):
        if not c["groups"] or c["iommuSet"]:
            raise Failure("EINVAL")
        c["iommuSet"] = True
        for gid in c["groups"]:
            self.attach_to_iommu(c, gid)
        return 0

    def detach(self, c, gid):
        if gid not in c["groups"]:
            raise Failure("EINVAL")
        if gid in self.device_fds:
            raise Failure("EBUSY")
        if c["iommuSet"]:
            self.detach_from_iommu(c, gid)
        c["groups"].remove(gid)
        c["iommuSet"] = c["iommuSet"] and bool(c["groups"])
        return 0

    def map(self, c, iova, size, vaddr):
        if not c["iommuSet"]:
            raise Failure("EINVAL")
        if not (page_aligned(iova) and page_aligned(vaddr) and page_aligned(size)) or size == 0:
            raise Failure("EINVAL")
        if iova + size > MAX_SAFE or vaddr + size > MAX_SAFE:
            raise Failure("EINVAL")
        if any(d["iova"] < iova + size and iova < d["iova"] + d["size"] for d in c["dmas"]):
            raise Failure("EEXIST")
        d = {"iova": iova, "size": size, "vaddr": vaddr}
        if c["domains"] and not self.fits_memlock(c["mm"], self.pages([d])):
            raise Failure("ENOMEM")
        for vd in c["domains"]:
            self.map_pages(vd["domain"], iova, size, {"kind": "user", "mm": c["mm"],
                                                      "vaddr": vaddr})
        c["dmas"].append(d)
        c["dmas"].sort(key=lambda d: d["iova"])
        if c["domains"]:
            self.pin(c["mm"], self.pages([d]), 1)
        return 0

    def unmap(self, c, iova, size):
        if not c["iommuSet"]:
            raise Failure("EINVAL")
        if not (page_aligned(iova) and page_aligned(size)) or size == 0:
            raise Failure("EINVAL")
        end = iova + size

        def bisects(x):
            return any(d["iova"] < x < d["iova"] + d["size"] for d in c["dmas"])

        if bisects(iova) or bisects(end):
            raise Failure("EINVAL")
        gone = [d for d in c["dmas"] if d["iova"] >= iova and d["iova"] + d["size"] <= end]
        # the vendor is told first and unpins what it pinned in the range
        self.drop_vendor_pins(
            c, lambda x: not any(d["iova"] <= x < d["iova"] + d["size"] for d in gone))
        for d in gone:
            for vd in c["domains"]:
                self.unmap_pages(vd["domain"], d["iova"], d["size"])
            if c["domains"]:
                self.pin(c["mm"], self.pages([d]), -1)
        c["dmas"] = [d for d in c["dmas"] if d not in gone]
        return sum(d["size"] for d in gone)

    @staticmethod
    def pin_iovas(c, gid, iova, pages):
        if gid not in c["localGroups"]:
            raise Failure("EINVAL")
        if not safe_int(pages) or not 1 <= pages <= PIN_PAGES_MAX:
            raise Failure("EINVAL")
        if not page_aligned(iova) or iova + pages * PAGE > MAX_SAFE:
            raise Failure("EINVAL")
        return [iova + i * PAGE for i in range(pages)]

    def pin_pages(self, c, gid, iova, pages):
        iovas = self.pin_iovas(c, gid, iova, pages)
        vaddrs = [self.vaddr_of(c, x) for x in iovas]
        if None in vaddrs:
            raise Failure("EINVAL")
        if not self.fits_memlock(c["mm"], vaddrs):
            raise Failure("ENOMEM")
        for x in iovas:
            c["vendorPins"][x] = c["vendorPins"].get(x, 0) + 1
        self.pin(c["mm"], vaddrs, 1)
        return pages

    def unpin_pages(self, c, gid, iova, pages):
        iovas = self.pin_iovas(c, gid, iova, pages)
        if any(x not in c["vendorPins"] for x in iovas):
            raise Failure("EINVAL")
        self.pin(c["mm"], [self.vaddr_of(c, x) for x in iovas], -1)
        for x in iovas:
            c["vendorPins"][x] -= 1
            if c["vendorPins"][x] == 0:
                del c["vendorPins"][x]
        return pages

    # ---- processes: fork and a store change no state of the type1 world but the process list

    def fork(self, mm, child):
        if not safe_int(child) or child < 1:
            raise Failure("EINVAL")
        if child in self.processes:
            raise Failure("EEXIST")
        self.processes[child] = mm
        return child

    def write(self, mm, vaddr):
        if not page_aligned(vaddr):
            raise Failure("EINVAL")
        return 0

    # ---- dispatch

    IOMMU_OPS = {
        "iommu.share": lambda w, a: w.share(a["group"], a["owner"]),
        "iommu.unshare": lambda w, a: w.unshare(a["group"], a["owner"]),
        "iommu.dmaAlloc": lambda w, a: w.dma_alloc(a["group"], a["pages"]),
        "iommu.dmaFree": lambda w, a: w.dma_free(a["group"], a["iova"]),
        "iommu.dma": lambda w, a: w.dma(a["group"], a["iova"]),
    }
    TYPE1_OPS = {
        "type1.openGroup": lambda w, c, a: w.open_group(c, a["group"]),
        "type1.closeGroup": lambda w, c, a: w.close_group(c, a["group"]),
        "type1.getDeviceFd": lambda w, c, a: w.get_device_fd(c, a["group"]),
        "type1.closeDeviceFd": lambda w, c, a: w.close_device_fd(c, a["group"]),
        "type1.attach": lambda w, c, a: w.attach(c, a["group"]),
        "type1.detach": lambda w, c, a: w.detach(c, a["group"]),
        "type1.setIommu": lambda w, c, a: w.set_iommu(c),
        "type1.map": lambda w, c, a: w.map(c, a["iova"], a["size"], a["vaddr"]),
        "type1.unmap": lambda w, c, a: w.unmap(c, a["iova"], a["size"]),
        "type1.pin": lambda w, c, a: w.pin_pages(c, a["group"], a["iova"], a["pages"]),
        "type1.unpin": lambda w, c, a: w.unpin_pages(c, a["group"], a["iova"], a["pages"]),
    }
    MM_OPS = {
        "mm.fork": lambda w, a: w.fork(a["mm"], a["child"]),
        "mm.write": lambda w, a: w.write(a["mm"], a["vaddr"]),
    }
    # Operations that may fail after changing something: run on a copy kept for unwinding.
    UNWIND = {"type1.attach", "type1.setIommu", "type1.map"}

    def apply(self, cmd):
        """Executes one command: (ret, events), the world changed only on success."""
        op = cmd.get("op")
        if op in self.IOMMU_OPS:
            if cmd.get("group") not in self.groups:
                return {"err": "ENODEV"}, []
            run = lambda: self.IOMMU_OPS[op](self, cmd)
        elif op in self.TYPE1_OPS:
            c = self.containers.get(cmd.get("container"))
            if c is None or ("group" in cmd and cmd["group"] not in self.groups):
                return {"err": "ENODEV"}, []
            run = lambda: self.TYPE1_OPS[op](self, c, cmd)
        elif op in self.MM_OPS:
            if cmd.get("mm") not in self.processes:
                return {"err": "ENODEV"}, []
            run = lambda: self.MM_OPS[op](self, cmd)
        else:
            raise KeyError(op)
        saved = copy.deepcopy(self.__dict__) if op in self.UNWIND else None
        try:
            return {"ok": run()}, []
        except Failure as f:
            if saved is not None:
                self.__dict__.update(saved)
            return {"err": f.errno}, f.events

    # ---- the state, in the spec's shape (ITF maps and sets)

    def observe(self):
        def m(d):
            return {"#map": [[k, v] for k, v in d.items()]}

        groups = {g.id: {"id": g.id, "kind": g.kind, "parent": g.parent,
                         "defaultDomain": g.default_domain, "domain": g.domain,
                         "shares": m(g.shares)} for g in self.groups.values()}
        domains = {i: {"id": i, "pages": m(p)} for i, p in self.domains.items()}
        pins = {}  # mm -> vaddr -> count, as the spec nests them
        for (mm, va), n in self.pins.items():
            pins.setdefault(mm, {})[va] = n
        containers = {i: dict(c, vendorPins=m(c["vendorPins"]))
                      for i, c in self.containers.items()}
        return {
            "iommu": {"groups": m(groups), "domains": m(domains), "buffers": m(self.buffers)},
            "type1": {
                "containers": m(containers),
                "pins": m({mm: m(pages) for mm, pages in pins.items()}),
                "lockedVm": m({mm: len(pages) for mm, pages in pins.items()}),
                "memlockPages": self.memlock,
                "processes": m(self.processes),
                "groupFds": m(self.group_fds),
                "deviceFds": {"#set": sorted(self.device_fds)},
            },
        }


def main():
    bugs = set()
    args = sys.argv[1:]
    while args:
        if args[0] == "--bug" and len(args) > 1 and args[1] == "keep-mappings-on-detach":
            bugs.add(args[1])
            args = args[2:]
        else:
            sys.stderr.write("usage: type1.py [--bug keep-mappings-on-detach]\n")
            return 2
    world = None
    out = sys.stdout.buffer
    pending = b""
    while True:
        *lines, pending = pending.split(b"\n")
        for line in lines:
            answer_line, world = handle(line, world, bugs)
            out.write(answer_line)
        out.flush()  # no complete request left: answer before waiting for more
        chunk = os.read(0, 1 << 16)
        if not chunk:
            return 0
        pending += chunk


def handle(line, world, bugs):
    """One request line: the answer line and the world after it."""
    try:
        req = json.loads(line)
    except ValueError as e:
        return error(f"malformed request: {e}"), world
    if not isinstance(req, dict):
        return error("the request is not a JSON object"), world
    if req.get("type") == "reset":
        try:
            world = World(req["config"]["topology"], bugs)
        except (KeyError, TypeError) as e:
            return error(f"bad config: {e!r}"), world
        return encode({"ready": True, "state": world.observe()}), world
    if req.get("type") == "apply":
        if world is None:
            return error("apply before reset"), world
        try:
            ret, events = world.apply(req["command"])
        except KeyError as e:
            return error(f"unknown op or missing argument {e}"), world
        return encode({"ret": ret, "events": events, "state": world.observe()}), world
    return error("unknown request type"), world


def error(message):
    return encode({"error": message})


def encode(obj):
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


if __name__ == "__main__":
    sys.exit(main())

/**
 * sdmdev's sysfs (RFCv2 3/7 `vfio_sdmdev_attrs`, the mdev core's `mdev_supported_types`):
 * `/sys/class/sdmdev/<pci name>/device/` with `params/{iommu_type,dma_flag}` and
 * `mdev_supported_types/<type>/{name,device_api,available_instances,create,devices/}`, each read
 * from the live class device and mdev parent. A class device is listed while it is live
 * (`vfio_sdmdev_pdev_sdmdev` finds it).
 *
 * @module
 */
import type { SdmdevAttrs } from "../../spec/sdmdev.ts";
import type { MdevCore } from "../vfio/mdev.ts";
import { dir, liveDir, roAttr, type SysfsDir, type SysfsNode, woAttr } from "../sysfs.ts";
import type { SdmdevClass, VfioSdmdev } from "./sdmdev.ts";

/** The PCI name of QM function `id` (`0000:00:<id>.0`, the id in hex). */
export function pciName(id: number): string {
  return `0000:00:${id.toString(16).padStart(2, "0")}.0`;
}

/** `/sys/class/sdmdev` of `cls`, whose mdevs live in `core`. */
export function sdmdevClassDir(cls: SdmdevClass, core: MdevCore): SysfsDir {
  return liveDir(() =>
    [...cls.devices.values()]
      .filter((sd) => typeof cls.pdevSdmdev(sd.parent) !== "string")
      .map((
        sd,
      ): [string, SysfsNode] => [pciName(sd.parent), dir({ device: deviceDir(cls, core, sd) })])
  );
}

function deviceDir(cls: SdmdevClass, core: MdevCore, sd: VfioSdmdev): SysfsDir {
  const param = (field: "iommu_type" | "dma_flag") =>
    roAttr(() => {
      const a: SdmdevAttrs | string = cls.readAttrs(sd.parent);
      return typeof a === "string" ? { errno: "ENODEV" } : a[field];
    });
  return dir({
    params: dir({ iommu_type: param("iommu_type"), dma_flag: param("dma_flag") }),
    mdev_supported_types: liveDir(() => {
      const types = core.readTypes(sd.parent, "sdmdev");
      if (typeof types === "string") return [];
      return types.map((t): [string, SysfsNode] => [t.id, typeDir(cls, core, sd, t.id)]);
    }),
  });
}

function typeDir(cls: SdmdevClass, core: MdevCore, sd: VfioSdmdev, id: string): SysfsDir {
  const field = (name: "name" | "device_api" | "available_instances") =>
    roAttr(() => {
      const types = core.readTypes(sd.parent, "sdmdev");
      const t = typeof types === "string" ? undefined : types.find((x) => x.id === id);
      return t ? t[name] : { errno: "ENODEV" };
    });
  return dir({
    name: field("name"),
    device_api: field("device_api"),
    available_instances: field("available_instances"),
    create: woAttr(async (uuid) => {
      const r = await cls.create(sd.parent, uuid);
      return typeof r === "string" ? r : undefined;
    }),
    devices: liveDir(() =>
      (core.parents.get(sd.parent)?.mdevList ?? [])
        .filter((d) => !d.gone && d.type.id === id)
        .map((d): [string, SysfsNode] => [d.uuid, dir({})])
    ),
  });
}

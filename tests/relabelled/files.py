"""The app config a site with an app of its own labelled "warehouse" installs ours with."""

from warehouse.apps import WarehouseConfig


class FilesConfig(WarehouseConfig):
    label = "files"

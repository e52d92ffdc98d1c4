"""The build layer: molecules, electrolyte boxes (and later polymer layers and interface cells).

Modules, one concept each (imported on use; this package imports nothing heavy):

``recipe``       electrolyte recipes as people write them -> :class:`~aseimd.build.recipe.Recipe`
``composition``  recipe -> integer counts, solution-volume estimate, achieved concentrations
``packing``      Packmol wrapper (periodic, seeded, with a timeout)
``electrolyte``  :func:`~aseimd.build.electrolyte.build_electrolyte` -> :class:`~aseimd.build.cell.Cell`
``cell``         :class:`~aseimd.build.cell.Cell` and the system directory (system.pdb/.xml, build.json)
``molecule``     single-molecule geometries and topologies
``slab``         BCC Li slabs (ASE) -> :class:`~aseimd.build.cell.Cell`
``spec``         the validated interface spec (:func:`~aseimd.build.spec.load_interface_spec`)
``interface``    the stacked Li | polymer | electrolyte cell (:func:`~aseimd.build.interface.build_interface`)
``interop``      Cell <-> ASE Atoms / pymatgen Structure, PDB and mmCIF output (the one Å <-> nm place)
"""

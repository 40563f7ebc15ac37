# What natmesh installs besides its programs, docs and man pages (each component installs
# its own), and the Debian package: `cpack -G DEB` in the build folder (docs/operators.md,
# "Installing the package"; tests/package/ builds, inspects and installs it).
#
# Installed here, from packaging/:
#   lib/systemd/system/   natmesh-manager.service, natmesh-relay.service,
#                         natmesh-servant@.service (Type=notify, hardened)
#   lib/sysusers.d/       natmesh.conf: the natmesh system user
#   lib/tmpfiles.d/       natmesh.conf: /etc/natmesh, readable by the natmesh group
#   <sysconfdir>/natmesh/ manager.xml, the manager service's configuration
#   <docdir>/examples/    relay.xml and servant.xml, for the relay and servant services
# The units name the installed programs and config, so they are written at install time,
# when the prefix is known: ExecStart=<prefix>/bin/..., and <sysconfdir> is /etc for the
# prefix /usr (the package) and <prefix>/etc for any other (`cmake --install --prefix DIR`
# keeps everything under DIR). /usr/local/lib/systemd/system, /usr/local/lib/sysusers.d and
# /usr/local/lib/tmpfiles.d are on systemd's search paths too.

set(NATMESH_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)
set(natmesh_units natmesh-manager.service natmesh-relay.service natmesh-servant@.service)

install(FILES ${NATMESH_PACKAGING_DIR}/natmesh.sysusers DESTINATION lib/sysusers.d RENAME natmesh.conf)
install(FILES ${NATMESH_PACKAGING_DIR}/config/relay.xml ${NATMESH_PACKAGING_DIR}/config/servant.xml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(CODE "
  set(nm_prefix \"\${CMAKE_INSTALL_PREFIX}\")
  if(nm_prefix STREQUAL \"/usr\")
    set(SYSCONFDIR /etc)
  else()
    set(SYSCONFDIR \"\${nm_prefix}/etc\")
  endif()
  set(BINDIR \"\${nm_prefix}/${CMAKE_INSTALL_BINDIR}\")
  set(DOCDIR \"\${nm_prefix}/${CMAKE_INSTALL_DOCDIR}\")
  set(nm_out \"${CMAKE_BINARY_DIR}/packaging-install\")
  foreach(unit ${natmesh_units})
    configure_file(\"${NATMESH_PACKAGING_DIR}/systemd/\${unit}.in\" \"\${nm_out}/\${unit}\" @ONLY)
    file(INSTALL DESTINATION \"\${nm_prefix}/lib/systemd/system\" TYPE FILE FILES \"\${nm_out}/\${unit}\")
  endforeach()
  configure_file(\"${NATMESH_PACKAGING_DIR}/natmesh.tmpfiles.in\" \"\${nm_out}/natmesh.conf\" @ONLY)
  file(INSTALL DESTINATION \"\${nm_prefix}/lib/tmpfiles.d\" TYPE FILE FILES \"\${nm_out}/natmesh.conf\")
  file(INSTALL DESTINATION \"\${SYSCONFDIR}/natmesh\" TYPE FILE
       FILES \"${NATMESH_PACKAGING_DIR}/config/manager.xml\")
")

# The Debian package. CPack installs into its staging folder with DESTDIR and the prefix
# /usr, so the code above sees the prefix the package will have.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME natmesh)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR natmesh)
set(CPACK_PACKAGE_CONTACT "natmesh maintainers <natmesh@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "NAT-aware peer-to-peer overlay: manager, servant, relay")
set(CPACK_PACKAGE_DESCRIPTION
    "natmesh is a peer-to-peer overlay for servants behind home routers. A connection manager
keeps the list of servants; servants map ports with UPnP IGD or NAT-PMP, connect to each
other directly over TLS 1.3, and the ones nobody can reach pull their lines from relays.
This package holds natmesh-manager, natmesh-servant, natmesh-relay, natmesh-ctl,
natmesh-portmap and natmesh-netsim, systemd units for the manager, relay nodes and
headless servants, man pages, sample configurations and the operator's guide.")
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.org/natmesh")
# Depends: what dpkg-shlibdeps finds the programs linked against (libuv1, libxml2,
# libssl3, libjansson4, libminiupnpc17, libnatpmp1, libsystemd0, libc6).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The units and sysusers.d/tmpfiles.d need systemd; the programs do not.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
# natmesh-netsim drives ip and nft; natmesh-ctl's dot output is for Graphviz.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "iproute2, nftables, graphviz")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
file(WRITE ${CMAKE_BINARY_DIR}/packaging-control/conffiles "/etc/natmesh/manager.xml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${NATMESH_PACKAGING_DIR}/debian/postinst ${NATMESH_PACKAGING_DIR}/debian/prerm
    ${NATMESH_PACKAGING_DIR}/debian/postrm ${CMAKE_BINARY_DIR}/packaging-control/conffiles)
include(CPack)

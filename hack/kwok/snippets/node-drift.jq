# true when the node's conditions differ from what rollback.test/node-state asks for
( .metadata.labels["rollback.test/node-state"] // "" ) as $s
| ( [ .status.conditions[]? | { key: .type, value: .status } ] | from_entries ) as $c
| ( ( $c.Ready // "" ) != ( if $s == "NotReady" then "False" else "True" end ) )
  or ( [ "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"
         | ( $c[.] // "False" ) != ( if $s == . then "True" else "False" end ) ] | any )

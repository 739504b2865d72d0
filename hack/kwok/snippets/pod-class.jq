# "crashloop", "broken" or "healthy": from the pod's labels or its images' tags
def tagged($word): any( ( .spec.containers // [] )[].image; test( ":[^/@]*" + $word + "[^/@]*$" ) );
( .metadata.labels // {} ) as $l
| if ( $l["rollback.test/crashloop"] // "" ) == "true" or tagged("crashloop") then "crashloop"
  elif ( $l["rollback.test/broken"] // "" ) == "true" or tagged("broken") then "broken"
  else "healthy" end

#include "eval/sample_text.h"

namespace ll {

namespace {
// Original text. Keep it plain ASCII: every tokenizer handles it the same way.
constexpr std::string_view kSample = R"TEXT(Once upon a time, there was a little boy named Tom. Tom lived in a small house near a big green hill. Every morning he looked out of his window and saw the sun come up over the hill. One day, Tom said to his mom, "Mom, I want to see what is on the other side of the hill." His mom smiled and said, "You can go, but take your red hat and come back before lunch."
Tom put on his red hat and walked up the hill. The grass was soft and wet. He saw a little bird on a rock. The bird was singing a happy song. "Hello, bird," said Tom. "Do you know what is on the other side of the hill?" The bird hopped and flew up into the sky. Tom laughed and kept walking.
At the top of the hill, Tom stopped. He saw a big blue lake. There were ducks on the water and a small boat near the shore. Tom was very happy. He ran down to the lake and sat on the sand. He watched the ducks swim in a line. Then he remembered his mom. He ran back home and told her all about the lake. His mom gave him a big hug and they ate lunch together.

Lily had a little cat named Mittens. Mittens was white with a black spot on her nose. She liked to sleep in the sun and play with a ball of yarn. One day, Mittens could not find her ball. She looked under the bed. She looked behind the chair. The ball was not there. Mittens was sad and she said, "Meow."
Lily saw that Mittens was sad. "What is wrong, Mittens?" she asked. Lily looked around the room and saw a piece of yarn under the door. She opened the door and followed the yarn into the kitchen. The ball was next to the table. Lily picked it up and gave it to Mittens. Mittens was so happy that she jumped and played all day. Lily learned that it is good to help a friend who is sad.

Ben and Mia were best friends. They liked to build things with blocks. One day, they wanted to build the tallest tower in the world. Ben put a big block at the bottom. Mia put a red block on top. They put a yellow block, then a green block, then a blue block. The tower was very tall.
"Be careful," said Mia. "It is going to fall." Ben wanted to put one more block on the top. He stood on his toes and put the block very slowly. The tower shook a little, but it did not fall. Ben and Mia clapped their hands. "We did it!" they said. Then their dog Max ran into the room and wagged his tail. The tower fell down with a big crash. Ben and Mia looked at each other and laughed. "Let's build it again," said Ben. And they did.

There was a small tree in a big park. The tree was sad because all the other trees were tall and it was small. The birds did not make nests in the small tree. The children did not sit in its shade. One day, a girl named Sue came to the park with her grandpa. Sue saw the small tree and said, "Grandpa, this tree is just like me. It is small, but it will grow."
Sue came back every week. She gave the tree water when the days were hot. She sang songs to it. The tree listened and it felt happy. The seasons went by. The snow came and went, and the flowers came back. The small tree grew and grew. After many years, the tree was tall and strong. Birds made nests in its branches and children sat in its shade. Sue was big now too. She sat under the tree and smiled. The tree was happy, because it had a good friend.

Sam had a shiny new bike. It was blue and it had a bell. Sam wanted to ride it to the park, but he did not know how. His dad said, "I will help you. First, you sit on the seat. Then you put your feet on the pedals." Sam sat on the seat. His dad held the back of the bike. Sam pushed the pedals and the bike moved. "I am riding!" he said.
His dad let go of the bike, but Sam did not know. He rode all the way to the big oak tree. Then he looked back and saw his dad far away. Sam was surprised. He rang his bell, ring, ring! His dad waved and cheered. From that day on, Sam rode his bike to the park every day. He was proud that he did not give up.

Anna found a little seed in the garden. She did not know what kind of seed it was. She asked her mom. Her mom said, "Let's plant it and see." They dug a small hole and put the seed in the dirt. Anna gave it water and said, "Grow, little seed, grow." Every day Anna looked at the dirt, but nothing happened. She was a little sad.
Then one morning, Anna saw something green. It was a tiny plant! She ran to tell her mom. The plant grew taller and taller. It got big green leaves and a long stem. One day, a big yellow flower opened at the top. It was a sunflower! The sunflower was taller than Anna. She stood next to it and smiled. "You were a very good seed," she said.

Once there was a fox who lived in the woods. The fox was clever, but he was also very hungry. One day he saw a crow in a tree. The crow had a piece of cheese in her beak. The fox wanted the cheese. He said, "Hello, crow. You are so pretty. I think you have a beautiful voice. Will you sing a song for me?"
The crow was proud. She opened her beak to sing, and the cheese fell down. The fox caught the cheese and ran away. The crow was sad. She learned that not everyone who says nice things is a friend. The next day, the fox came back and said nice things again. This time the crow held her food with her foot and sang a loud song. The fox went away with nothing, and the crow was happy.

Jack and his sister Emma went to the beach with their mom and dad. The sun was hot and the sand was warm. Jack took his bucket and his shovel. Emma took a big towel and a ball. They ran to the water and put their toes in the waves. The water was cold! Emma screamed and laughed. Jack jumped over a little wave.
Then they built a sand castle. Jack dug a deep hole and Emma made the walls. They put shells on the top of the castle. Dad brought them some water to make a moat. A big wave came and filled the moat with water. "Look, our castle has a lake!" said Emma. When the sun went down, they ate sandwiches on the towel and watched the sky turn pink and orange. It was the best day of the summer.

A little bear named Bobo did not like to sleep. Every night his mama said, "It is time for bed, Bobo." And every night Bobo said, "I am not tired!" He wanted to play with his toys and look at the stars. One night, Mama Bear had an idea. She took Bobo outside and they sat on a soft log. "Let's count the stars," she said.
Bobo counted one star, then two stars, then three. He counted ten stars and then twenty. His eyes got heavy. He yawned a big yawn. "Mama," he said in a small voice, "there are too many stars." Mama Bear smiled and carried him to his bed. Bobo was asleep before she said good night. From then on, Bobo and his mama counted stars every night, and he was never sad at bedtime again.

Kim had a red kite. It was her favorite toy. One windy day, she took the kite to the field behind her house. She ran as fast as she could and the kite went up into the sky. It went higher and higher. Kim held the string tight. The kite danced in the wind like a bird.
Suddenly the wind blew very hard and the string slipped out of her hand. The kite flew away over the trees. Kim was very sad and she started to cry. An old man who lived near the field saw her. He walked into the trees and came back with the red kite. It was caught on a branch, but it was not broken. "Thank you!" said Kim. The old man smiled. "Hold the string with both hands," he said. Kim flew her kite again, and this time she did not let go.

Tim liked to help his grandma bake. On Sunday they made cookies together. Grandma put flour, sugar and butter in a big bowl. Tim mixed it with a spoon. It was hard work, but Tim was strong. Then Grandma added two eggs and some chocolate. The dough was sticky and sweet. Tim wanted to eat it, but Grandma said, "Wait until they are baked."
They made little balls of dough and put them on a tray. Grandma put the tray in the hot oven. Soon the whole house smelled good. When the cookies were ready, they let them cool. Tim took a cookie and gave it to Grandma first. "You are a kind boy," she said. They ate the cookies with cold milk and talked about the day. Tim thought that baking with Grandma was the best thing in the world.
)TEXT";
} // namespace

std::string_view builtinSampleText()
{
    return kSample;
}

} // namespace ll
